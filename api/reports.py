"""Reports: submission, the reporter's status view and reporter messages."""

from __future__ import annotations

import uuid

from flask_restx import Namespace, Resource, reqparse
from werkzeug.datastructures import FileStorage

from api import parsing
from api.openapi import register_models
from api.ratelimit import failed_lookup, limiter, report_key, setting, single_trip_limiter
from api.schemas import (
    MessageCreateSchema,
    MessageSchema,
    PhotoAcceptedSchema,
    ProblemSchema,
    ReportCreatedSchema,
    ReportCreateSchema,
    ReportStatusSchema,
)
from stopapp.db import unit_of_work
from stopapp.extensions import settings
from stopapp.media import services as media
from stopapp.reports import services

ns = Namespace("reports", path="/reports", description="Reports from the public")
models = register_models(
    ns,
    [ReportCreateSchema, ReportCreatedSchema, ReportStatusSchema, MessageCreateSchema,
     MessageSchema, PhotoAcceptedSchema, ProblemSchema],
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
# Failed receipt checks are capped per client and per report, so a receipt cannot be guessed
# by many tries from one address or from many.
receipt_failure_limits = [
    limiter.limit(setting("RATELIMIT_RECEIPT_FAILURES"), deduct_when=failed_lookup),
    limiter.limit(
        setting("RATELIMIT_RECEIPT_FAILURES"), key_func=report_key, deduct_when=failed_lookup
    ),
]


# Documents the multipart body; the request itself is read by parsing.photo_upload.
photo_form = reqparse.RequestParser()
photo_form.add_argument(
    "photo", location="files", type=FileStorage, required=True,
    help="One JPEG, PNG, WebP or HEIC/HEIF photo; judged by its content.",
)


def _problem(code: int, text: str):
    return ns.response(code, text, models["Problem"])


@ns.route("")
class Reports(Resource):
    # The intake path: its limits cost one Redis round trip (api/ratelimit.py).
    decorators = [single_trip_limiter.limit("RATELIMIT_REPORTS")]

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
            # Serialised before the commit expires the row, which would cost a reload.
            body = ReportCreatedSchema().dump(
                {
                    "id": submission.report_id,
                    "receipt": submission.receipt,
                    "status": submission.reporter_status,
                    "created_at": submission.created_at,
                    "max_photos": settings().MAX_PHOTOS_PER_REPORT,
                }
            )
        # The contract promises the same answer for a retry: the same status code included.
        return body, 201, {"Cache-Control": "no-store"}


@ns.route("/<uuid:report_id>/status")
class ReportStatus(Resource):
    decorators = [limiter.limit(setting("RATELIMIT_READS")), *receipt_failure_limits]

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
    decorators = [limiter.limit(setting("RATELIMIT_READS")), *receipt_failure_limits]

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


@ns.route("/<uuid:report_id>/photos")
class ReportPhotos(Resource):
    decorators = [limiter.limit(setting("RATELIMIT_PHOTOS")), *receipt_failure_limits]

    @ns.doc(params={**receipt_header, **idempotency_header})
    @ns.expect(photo_form)
    @ns.response(202, "Accepted; processing follows", models["PhotoAccepted"])
    @_problem(404, "Unknown id, or wrong or missing receipt")
    @_problem(409, "The report has its maximum number of photos")
    @_problem(413, "Over 20 MiB")
    @_problem(415, "Not JPEG, PNG, WebP or HEIC/HEIF by content, or not multipart")
    @_problem(422, "Undecodable, truncated, empty, over 60 megapixels, or a bomb")
    @_problem(429, "Rate limited; see Retry-After")
    def post(self, report_id: uuid.UUID):
        """Attach a photo to a report. Only a metadata-free copy is ever kept."""
        key = parsing.idempotency_key()
        open_upload = parsing.photo_upload(settings().MAX_PHOTO_BYTES)
        with unit_of_work():
            accepted = media.accept_photo(report_id, parsing.receipt(), key, open_upload)
            # A retry repeats the first answer: the photo was accepted for processing.
            body = PhotoAcceptedSchema().dump({"id": accepted.photo.id, "status": "processing"})
        return body, 202, {"Cache-Control": "no-store"}
