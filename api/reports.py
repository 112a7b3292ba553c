"""Reports: submission, the reporter's status view and reporter messages."""

from __future__ import annotations

import uuid

from flask_restx import Namespace, Resource

from api import parsing
from api.openapi import register_models
from api.ratelimit import failed_lookup, limiter, report_key, setting
from api.schemas import (
    MessageCreateSchema,
    MessageSchema,
    ProblemSchema,
    ReportCreatedSchema,
    ReportCreateSchema,
    ReportStatusSchema,
)
from stopapp.db import unit_of_work
from stopapp.extensions import settings
from stopapp.reports import services

ns = Namespace("reports", path="/reports", description="Reports from the public")
models = register_models(
    ns,
    [ReportCreateSchema, ReportCreatedSchema, ReportStatusSchema, MessageCreateSchema,
     MessageSchema, ProblemSchema],
)
_create_schema = ReportCreateSchema()
_message_schema = MessageCreateSchema()

receipt_header = {
    parsing.RECEIPT_HEADER: {
        "in": "header", "type": "string", "required": True,
        "description": "The receipt given at submission.",
    }
}
idempotency_header = {
    "Idempotency-Key": {
        "in": "header", "type": "string", "format": "uuid", "required": True,
        "description": "A UUID the app made for this request; a retry repeats it.",
    }
}
# Reads by receipt: a general cap per client, and caps on failed receipt checks per client and
# per report, so a receipt cannot be guessed by many tries from one or from many addresses.
receipt_limits = [
    limiter.limit(setting("RATELIMIT_READS")),
    limiter.limit(setting("RATELIMIT_RECEIPT_FAILURES"), deduct_when=failed_lookup),
    limiter.limit(
        setting("RATELIMIT_RECEIPT_FAILURES"), key_func=report_key, deduct_when=failed_lookup
    ),
]


def _problem(code: int, text: str):
    return ns.response(code, text, models["Problem"])


@ns.route("")
class Reports(Resource):
    decorators = [limiter.limit(setting("RATELIMIT_REPORTS"))]

    @ns.doc(params=idempotency_header)
    @ns.expect(models["ReportCreate"])
    @ns.response(201, "Stored (or a retry: the first answer again)", models["ReportCreated"])
    @_problem(400, "Malformed JSON")
    @_problem(413, "Body over 1 MiB")
    @_problem(415, "Not application/json")
    @_problem(422, "Invalid, or the Idempotency-Key was used with another body")
    @_problem(429, "Rate limited; see Retry-After")
    def post(self):
        """Submit a report."""
        key = parsing.idempotency_key()
        fields = parsing.load_body(_create_schema)
        with unit_of_work():
            submission = services.submit_report(fields, key)
        body = ReportCreatedSchema().dump(
            {
                "id": submission.report.id,
                "receipt": submission.receipt,
                "status": submission.reporter_status,
                "created_at": submission.report.created_at,
                "max_photos": settings().MAX_PHOTOS_PER_REPORT,
            }
        )
        # The contract promises the same answer for a retry: the same status code included.
        return body, 201, {"Cache-Control": "no-store"}


@ns.route("/<uuid:report_id>/status")
class ReportStatus(Resource):
    decorators = receipt_limits

    @ns.doc(params=receipt_header)
    @ns.response(200, "The reporter's view", models["ReportStatus"])
    @_problem(404, "Unknown id, or wrong or missing receipt")
    @_problem(429, "Rate limited; see Retry-After")
    def get(self, report_id: uuid.UUID):
        """The reporter's view of a report: coarse status, photos and messages."""
        with unit_of_work():
            status = services.reporter_status(report_id, parsing.receipt())
        return ReportStatusSchema().dump(status), 200, {"Cache-Control": "no-store"}


@ns.route("/<uuid:report_id>/messages")
class ReportMessages(Resource):
    decorators = receipt_limits

    @ns.doc(params=receipt_header)
    @ns.expect(models["MessageCreate"])
    @ns.response(201, "Added", models["Message"])
    @_problem(404, "Unknown id, or wrong or missing receipt")
    @_problem(422, "Invalid body")
    @_problem(429, "Rate limited; see Retry-After")
    def post(self, report_id: uuid.UUID):
        """Add information to a report, or answer an analyst's question."""
        fields = parsing.load_body(_message_schema)
        with unit_of_work():
            message = services.add_reporter_message(report_id, parsing.receipt(), fields["body"])
            body = MessageSchema().dump(
                {"id": message.id, "from": message.sender, "body": message.body,
                 "sent_at": message.created_at}
            )
        return body, 201, {"Cache-Control": "no-store"}
