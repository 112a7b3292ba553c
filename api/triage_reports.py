"""The analysts' API for reports and their photos (STAFF_API.md, "Reports" and "Photos").

Thin handlers: authenticate, parse, call one service in stopapp/review inside a unit of work,
dump. Every change but notes, replies and bulk needs `If-Match: "<version>"` and answers with
the new `ETag`.
"""

from __future__ import annotations

import uuid

from flask import Response, request
from flask_restx import Namespace, Resource

from api.auth import current_actor
from api.openapi import operation, register_models
from api.parsing import NO_STORE, if_match, load_body, load_query
from api.problem import problem_object
from api.schemas import ProblemSchema
from api.triage_report_schemas import (
    BULK_BODY,
    AssignSchema,
    BulkResultsSchema,
    BulkSchema,
    ContactDetailsSchema,
    ContactQuerySchema,
    NoteCreateSchema,
    NoteSchema,
    QueuePageSchema,
    QueueQuerySchema,
    ReplyCreateSchema,
    ReportDetailSchema,
    ReportPatchSchema,
    ReportStateSchema,
    StaffMessageSchema,
    TransitionSchema,
    dump_summary,
)
from stopapp.db import unit_of_work
from stopapp.review import queue, services
from stopapp.review.services import etag

ns = Namespace("triage_reports", path="/triage", description="Analysts: the queue and reports")
models = register_models(
    ns,
    [QueuePageSchema, ReportDetailSchema, ReportPatchSchema, ReportStateSchema, AssignSchema,
     TransitionSchema, NoteCreateSchema, NoteSchema, ReplyCreateSchema, StaffMessageSchema,
     BulkResultsSchema, ContactDetailsSchema, ProblemSchema],
)
if_match_header = {
    "If-Match": {
        "in": "header", "type": "string", "required": True,
        "description": 'The version from the last read, quoted: "3".',
    }
}


def _problem(code: int, text: str):
    return ns.response(code, text, models["Problem"])



def _changed(report) -> tuple:
    body = ReportStateSchema().dump(report)
    return body, 200, {**NO_STORE, "ETag": etag(report.version)}


def queue_query() -> queue.QueueQuery:
    """The queue's filters from the query string. Raises ValidationError naming the parameter."""
    loaded = load_query(QueueQuerySchema())
    return queue.QueueQuery(
        states=tuple(dict.fromkeys(loaded.get("state") or queue.DEFAULT_STATES)),
        type=loaded.get("type"),
        tags=tuple(dict.fromkeys(loaded.get("tag") or ())),
        assignee=loaded.get("assignee"),
        area=loaded.get("area"),
        bbox=loaded.get("bbox"),
        created_from=loaded.get("created_from"),
        created_to=loaded.get("created_to"),
        q=loaded.get("q"),
        sort=loaded["sort"],
        limit=loaded["limit"],
        cursor=loaded.get("cursor"),
        counts=loaded["counts"],
    )


@ns.route("/reports")
class Queue(Resource):
    @operation(query=QueueQuerySchema)
    @ns.response(200, "A page of the queue", models["QueuePage"])
    @_problem(401, "No or a bad token")
    @_problem(422, "A bad parameter or cursor (named in errors)")
    def get(self):
        """The analysts' queue: filtered, sorted, keyset-paged."""
        with unit_of_work():
            actor = current_actor()
            page = queue.list_reports(actor, queue_query())
        body = {"items": [dump_summary(item) for item in page.items],
                "next_cursor": page.next_cursor}
        if page.counts is not None:
            body["counts"] = page.counts
        return body, 200, NO_STORE


@ns.route("/reports/bulk")
class Bulk(Resource):
    @operation(body=BULK_BODY)
    @ns.response(200, "Each report's own outcome", models["BulkResults"])
    @_problem(403, "assign by an analyst")
    @_problem(422, "Invalid body")
    def post(self):
        """One action on up to 200 reports, each on its own and to its current version."""
        with unit_of_work():
            actor = current_actor()
            fields = load_body(BulkSchema())
            results = services.bulk_change(actor, fields.pop("ids"), fields.pop("action"), fields)
        rows = []
        for result in results:
            row = {"id": result.id, "status": result.status}
            if result.problem is None:
                row["version"] = result.version
            else:
                row["problem"] = problem_object(result.problem)
            rows.append(row)
        return BulkResultsSchema().dump({"results": rows}), 200, NO_STORE


@ns.route("/reports/<uuid:report_id>")
class Report(Resource):
    @ns.response(200, "The report (ETag: its version); the read is audited",
                 models["ReportDetail"])
    @_problem(404, "No such report")
    def get(self, report_id: uuid.UUID):
        """Everything staff may see of a report, with its history."""
        with unit_of_work():
            detail = queue.report_detail(current_actor(), report_id)
            body = ReportDetailSchema().dump(detail)
        return body, 200, {**NO_STORE, "ETag": etag(detail["version"])}

    @ns.doc(params=if_match_header)
    @ns.expect(models["ReportPatch"])
    @ns.response(200, "Changed (ETag: the new version)", models["ReportState"])
    @_problem(403, "priority_override by an analyst")
    @_problem(409, "Claimed by another analyst")
    @_problem(412, "Stale If-Match; the body names the current version")
    @_problem(422, "Unknown or retired tags, bad values")
    @_problem(428, "No If-Match")
    def patch(self, report_id: uuid.UUID):
        """Replace the tags and/or set the priority override (supervisor)."""
        with unit_of_work():
            actor = current_actor()
            changes = load_body(ReportPatchSchema())
            return _changed(services.update_report(actor, report_id, if_match(), changes))


def _change_route(path: str, doc: str, schema=None, call=None):
    """A POST that changes the report under If-Match and answers its new state."""

    class Change(Resource):
        @ns.doc(params=if_match_header, description=doc)
        @ns.response(200, "Changed (ETag: the new version)", models["ReportState"])
        @_problem(404, "No such report")
        @_problem(409, "Not allowed from this state, or claimed by another analyst")
        @_problem(412, "Stale If-Match; the body names the current version")
        @_problem(428, "No If-Match")
        def post(self, report_id: uuid.UUID):
            with unit_of_work():
                actor = current_actor()
                fields = load_body(schema()) if schema else {}
                return _changed(call(actor, report_id, if_match(), fields))

    Change.__name__ = Change.__qualname__ = path.title().replace("_", "") + "Change"
    if schema is not None:
        Change.post = ns.expect(models[schema.__name__.removesuffix("Schema")])(Change.post)
    ns.route(f"/reports/<uuid:report_id>/{path}")(Change)


_change_route("claim", "The caller becomes the assignee; new becomes in_review.",
              call=lambda actor, rid, im, _: services.claim_report(actor, rid, im))
_change_route("release", "Give up the claim; in_review becomes new.",
              call=lambda actor, rid, im, _: services.release_report(actor, rid, im))
_change_route("assign", "Assign to an active member of staff (supervisor).", AssignSchema,
              lambda actor, rid, im, f: services.assign_report(actor, rid, im, f["user_id"]))
_change_route("transitions", "Move the report along the table of STAFF_API.md.",
              TransitionSchema, services.transition_report)


@ns.route("/reports/<uuid:report_id>/notes")
class Notes(Resource):
    @ns.expect(models["NoteCreate"])
    @ns.response(201, "Added", models["Note"])
    @_problem(404, "No such report")
    @_problem(409, "Claimed by another analyst")
    def post(self, report_id: uuid.UUID):
        """A private note for staff (no If-Match)."""
        with unit_of_work():
            actor = current_actor()
            body = load_body(NoteCreateSchema())["body"]
            note = services.add_note(actor, report_id, body)
            answer = NoteSchema().dump(
                {"id": note.id, "body": note.body, "created_at": note.created_at,
                 "author": {"id": actor.id, "name": actor.name}}
            )
        return answer, 201, NO_STORE


@ns.route("/reports/<uuid:report_id>/replies")
class Replies(Resource):
    @ns.expect(models["ReplyCreate"])
    @ns.response(201, "Sent: the reporter sees it as from an analyst, unnamed",
                 models["StaffMessage"])
    @_problem(404, "No such report")
    @_problem(409, "Claimed by another analyst")
    def post(self, report_id: uuid.UUID):
        """A message to the reporter (no If-Match)."""
        with unit_of_work():
            actor = current_actor()
            body = load_body(ReplyCreateSchema())["body"]
            message = services.add_reply(actor, report_id, body)
            answer = StaffMessageSchema().dump(
                {"id": message.id, "from": message.sender, "body": message.body,
                 "sent_at": message.created_at, "author": {"id": actor.id, "name": actor.name}}
            )
        return answer, 201, NO_STORE


@ns.route("/reports/<uuid:report_id>/contact")
class Contact(Resource):
    @operation(query=ContactQuerySchema)
    @ns.response(200, "The decrypted contact details", models["ContactDetails"])
    @_problem(403, "Not a supervisor")
    @_problem(404, "No such report, or no contact details")
    @_problem(422, "No reason")
    def get(self, report_id: uuid.UUID):
        """The reporter's contact details, for supervisors, audited with the reason."""
        with unit_of_work():
            actor = current_actor()
            details = services.reveal_contact(actor, report_id, request.args.get("reason", ""))
        return ContactDetailsSchema().dump(details), 200, NO_STORE


def _photo_route(variant: str) -> None:
    class PhotoFile(Resource):
        @ns.produces(["image/jpeg"])
        @ns.response(200, f"The clean {variant} JPEG; the read is audited")
        @_problem(404, "No such photo, or not ready")
        def get(self, photo_id: uuid.UUID):
            with unit_of_work():
                with services.open_photo(current_actor(), photo_id, variant) as stream:
                    # A clean copy is at most 2048 px, a few hundred KiB: read whole, so
                    # that no file stays open on a client that stops reading.
                    data = stream.read()
            return Response(data, mimetype="image/jpeg", headers={
                **NO_STORE, "X-Content-Type-Options": "nosniff"})

    PhotoFile.__name__ = PhotoFile.__qualname__ = f"Photo{variant.title()}"
    PhotoFile.get.__doc__ = f"The {variant} copy of a ready photo (never the original)."
    ns.route(f"/photos/<uuid:photo_id>/{variant}")(PhotoFile)


for _variant in services.PHOTO_VARIANTS:
    _photo_route(_variant)
