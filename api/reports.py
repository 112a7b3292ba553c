"""Reports: submission, the reporter's status view and reporter messages."""

from __future__ import annotations

import functools
import json
import uuid

from flask import current_app, request
from flask_restx import Namespace, Resource

from api import parsing
from api.openapi import IDEMPOTENCY_KEY, REPORT_RECEIPT, Reply, operation
from api.ratelimit import failed_lookup, limiter, report_key, setting, single_trip_limiter
from api.schemas import (
    MessageCreateSchema,
    MessageSchema,
    PhotoAcceptedSchema,
    PhotoUploadSchema,
    ReportCreatedSchema,
    ReportCreateSchema,
    ReportStatusSchema,
)
from stopapp.db import unit_of_work
from stopapp.extensions import settings
from stopapp.media import services as media
from stopapp.reports import services

ns = Namespace("reports", path="/reports", description="Reports from the public")
_create_schema = ReportCreateSchema()
_message_schema = MessageCreateSchema()
# Built once: a schema's construction copies its fields, which cost more than the dump itself.
_created_schema = ReportCreatedSchema()
# The 201 body is made by each field's own serialize, as Schema.dump does, without its
# machinery (the schema has no hooks, no data_key, no only/exclude): the same dict, in the
# same order (tests/test_fastload.py compares the two).
_CREATED_FIELDS = tuple(_created_schema.dump_fields.items())


def dump_created(values: dict) -> dict:
    """`_created_schema.dump(values)` for the submission's answer."""
    return {name: field.serialize(name, values) for name, field in _CREATED_FIELDS}

# Failed receipt checks are capped per client and per report, so a receipt cannot be guessed
# by many tries from one address or from many.
receipt_failure_limits = [
    limiter.limit(setting("RATELIMIT_RECEIPT_FAILURES"), deduct_when=failed_lookup),
    limiter.limit(
        setting("RATELIMIT_RECEIPT_FAILURES"), key_func=report_key, deduct_when=failed_lookup
    ),
]

# What a client can do next with an answer, as OpenAPI links (schemathesis follows them).
_FROM_CREATED = {"report_id": "$response.body#/id",
                 "header.X-Report-Receipt": "$response.body#/receipt"}
_FROM_REQUEST = {"report_id": "$request.path.report_id",
                 "header.X-Report-Receipt": "$request.header.X-Report-Receipt"}


def _links(parameters: dict) -> dict:
    return {
        name: {"operationId": operation_id, "parameters": parameters}
        for name, operation_id in (("GetStatus", "getReportStatus"),
                                   ("AddMessage", "addReportMessage"),
                                   ("UploadPhoto", "uploadReportPhoto"))
    }


# And what staff can do with a new report (their token, not the receipt, authorises it).
_STAFF_LINKS = {
    name: {"operationId": operation_id, "parameters": {"report_id": "$response.body#/id"}}
    for name, operation_id in (("ClaimReport", "postClaimChange"),
                               ("ForwardReport", "postReportForwards"),
                               ("RevealContact", "getContact"))
}


_NOT_YOURS = "Unknown id, or wrong or missing receipt"


@ns.route("")
class Reports(Resource):
    # The intake path: its limits cost one Redis round trip (api/ratelimit.py).
    decorators = [single_trip_limiter.limit("RATELIMIT_REPORTS")]

    @operation(
        "submitReport",
        body=ReportCreateSchema,
        headers=[IDEMPOTENCY_KEY],
        responses={
            201: Reply(ReportCreatedSchema, "Stored (or a retry: the first answer again)",
                       links={**_links(_FROM_CREATED), **_STAFF_LINKS}),
            413: "Body over 1 MiB",
            422: "Invalid, or the Idempotency-Key was used with another body",
        },
    )
    def post(self):
        """Submit a report."""
        return submit()


def submit() -> tuple[dict, int, dict]:
    """POST /reports: the body, status and headers of the answer (see Reports.post)."""
    key = parsing.idempotency_key()
    fields = parsing.load_body(_create_schema)
    # One statement (insert, or find the first answer): autocommitted on its own.
    with unit_of_work(single_statement=True):
        submission = services.submit_report(fields, key)
        # Serialised before the commit expires the row, which would cost a reload.
        body = dump_created(
            {
                "id": submission.report_id,
                "receipt": submission.receipt,
                "status": submission.reporter_status,
                "created_at": submission.created_at,
                "max_photos": settings().MAX_PHOTOS_PER_REPORT,
            }
        )
    # The contract promises the same answer for a retry: the same status code included.
    return body, 201, parsing.NO_STORE


@single_trip_limiter.limit("RATELIMIT_REPORTS")
def submit_view():
    """POST /reports served as a plain Flask view: the hottest endpoint skips flask-restx's
    Resource dispatch (method lookup, decorators, payload-validation check) and its
    representation lookup (Accept negotiation that always ends in JSON here), about a tenth of
    a submission's CPU in the web process. The answer is byte for byte what flask-restx's
    output_json makes (stdlib json.dumps with RESTX_JSON's settings, a newline, Content-Type
    application/json); errors still leave through the same problem+json renderer (app-level
    handlers, api/problem.py). The Resource above stays registered, so the OpenAPI document
    and the URL rule are unchanged: install_submit_view only swaps the rule's view function.
    """
    body, status, headers = submit()
    text = json.dumps(body, **current_app.config.get("RESTX_JSON", {})) + "\n"
    return current_app.response_class(text, status, headers, mimetype="application/json")


def install_submit_view(app) -> None:  # noqa: ANN001 - a Flask app
    """Serve POST /reports by submit_view (call after the blueprint is registered)."""
    endpoint = "api.reports_reports"
    restx_view = app.view_functions[endpoint]

    @functools.wraps(submit_view)
    def view(*args, **kwargs):
        # The rule allows POST only (OPTIONS is answered by Flask before any view).
        if request.method == "POST":
            return submit_view(*args, **kwargs)
        return restx_view(*args, **kwargs)

    app.view_functions[endpoint] = view


@ns.route("/<uuid:report_id>/status")
class ReportStatus(Resource):
    decorators = [limiter.limit(setting("RATELIMIT_READS")), *receipt_failure_limits]

    @operation(
        "getReportStatus",
        headers=[REPORT_RECEIPT],
        responses={200: Reply(ReportStatusSchema, "The reporter's view"), 404: _NOT_YOURS},
    )
    def get(self, report_id: uuid.UUID):
        """The reporter's view of a report: coarse status, photos and messages."""
        with unit_of_work():
            status = services.reporter_status(report_id, parsing.receipt())
        return ReportStatusSchema().dump(status), 200, parsing.NO_STORE


@ns.route("/<uuid:report_id>/messages")
class ReportMessages(Resource):
    decorators = [limiter.limit(setting("RATELIMIT_READS")), *receipt_failure_limits]

    @operation(
        "addReportMessage",
        body=MessageCreateSchema,
        headers=[REPORT_RECEIPT],
        responses={201: Reply(MessageSchema, "Added", links=_links(_FROM_REQUEST)),
                   404: _NOT_YOURS},
    )
    def post(self, report_id: uuid.UUID):
        """Add information to a report, or answer an analyst's question."""
        fields = parsing.load_body(_message_schema)
        with unit_of_work():
            message = services.add_reporter_message(report_id, parsing.receipt(), fields["body"])
            body = MessageSchema().dump(
                {"id": message.id, "from": message.sender, "body": message.body,
                 "sent_at": message.created_at}
            )
        return body, 201, parsing.NO_STORE


@ns.route("/<uuid:report_id>/photos")
class ReportPhotos(Resource):
    decorators = [limiter.limit(setting("RATELIMIT_PHOTOS")), *receipt_failure_limits]

    @operation(
        "uploadReportPhoto",
        body=(PhotoUploadSchema, "multipart/form-data"),
        headers=[REPORT_RECEIPT, IDEMPOTENCY_KEY],
        responses={
            202: Reply(PhotoAcceptedSchema, "Accepted; processing follows",
                       links=_links(_FROM_REQUEST)),
            404: _NOT_YOURS,
            409: "The report has its maximum number of photos",
            413: "Over 20 MiB",
            415: "Not JPEG, PNG, WebP or HEIC/HEIF by content, or not multipart",
            422: "Undecodable, truncated, empty, over 60 megapixels, or a bomb; or the "
                 "Idempotency-Key is missing",
        },
    )
    def post(self, report_id: uuid.UUID):
        """Attach a photo to a report. Only a metadata-free copy is ever kept."""
        key = parsing.idempotency_key()
        open_upload = parsing.photo_upload(settings().MAX_PHOTO_BYTES)
        with unit_of_work():
            accepted = media.accept_photo(report_id, parsing.receipt(), key, open_upload)
            # A retry repeats the first answer: the photo was accepted for processing.
            body = PhotoAcceptedSchema().dump({"id": accepted.photo.id, "status": "processing"})
        return body, 202, parsing.NO_STORE
