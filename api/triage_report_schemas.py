"""The wire format of the analysts' report endpoints (STAFF_API.md, "Reports" and "Photos")."""

from __future__ import annotations

import math
import uuid

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.schemas import StrictInteger, StrictSchema, UtcDateTime, no_nul, text
from stopapp.constants import ReportState
from stopapp.review.queue import DEFAULT_LIMIT, MAX_LIMIT, SORTS
from stopapp.review.services import DISMISS_REASON_CODES, MAX_BULK_IDS, MAX_TAGS

STATES = [s.value for s in ReportState]
MAX_NOTE_CHARS = 10_000
MAX_REPLY_CHARS = 5_000
MAX_REASON_CHARS = 1_000
PHOTO_URL = "/api/v1/triage/photos/{id}/{variant}"


# -- the queue's query string ----------------------------------------------------------------------


class BBoxField(fields.Field):
    """`minLon,minLat,maxLon,maxLat` in WGS 84 degrees, west to east and south to north."""

    def _deserialize(self, value, attr, data, **kwargs):
        parts = value.split(",") if isinstance(value, str) else []
        try:
            box = tuple(float(p) for p in parts)
        except ValueError:
            box = ()
        if len(box) != 4 or not all(math.isfinite(v) for v in box):
            raise ValidationError("Four numbers: minLon,minLat,maxLon,maxLat.")
        min_lon, min_lat, max_lon, max_lat = box
        if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
            raise ValidationError(
                "Longitudes within -180..180 and latitudes within -90..90, minimum below maximum."
            )
        return box


class AssigneeField(fields.Field):
    """`me`, `none` or a user id."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value in ("me", "none"):
            return value
        try:
            return uuid.UUID(value)
        except (TypeError, ValueError) as exc:
            raise ValidationError("me, none or a user id.") from exc


class FlagField(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if value in ("1", "true"):
            return True
        if value in ("0", "false"):
            return False
        raise ValidationError("1 or 0.")


class QueueQuerySchema(StrictSchema):
    """GET /api/v1/triage/reports. `state` and `tag` may be repeated; the rest may not."""

    REPEATABLE = ("state", "tag")

    state = fields.List(fields.String(validate=validate.OneOf(STATES)),
                        validate=validate.Length(min=1, max=len(STATES)))
    type = fields.String(validate=[validate.Length(1, 64), no_nul])
    tag = fields.List(fields.String(validate=[validate.Length(1, 200), no_nul]),
                      validate=validate.Length(min=1, max=MAX_TAGS))
    assignee = AssigneeField()
    area = fields.String(validate=[validate.Length(1, 64), no_nul])
    bbox = BBoxField()
    created_from = UtcDateTime()
    created_to = UtcDateTime()
    q = fields.String(validate=[validate.Length(1, 500), validate.Regexp(r"(?s).*\S"), no_nul])
    sort = fields.String(validate=validate.OneOf(SORTS), load_default="priority")
    limit = fields.Integer(validate=validate.Range(1, MAX_LIMIT), load_default=DEFAULT_LIMIT)
    cursor = fields.String(validate=validate.Length(1, 500))
    counts = FlagField(load_default=False)


# -- requests ----------------------------------------------------------------------------------


def _tag_list(**kwargs) -> fields.List:
    return fields.List(
        fields.String(validate=[validate.Length(1, 200), no_nul]),
        validate=validate.Length(max=MAX_TAGS),
        metadata={"description": "dimension:code from GET /triage/taxonomy, or free:<text>."},
        **kwargs,
    )


class ReportPatchSchema(StrictSchema):
    tags = _tag_list()
    priority_override = StrictInteger(
        allow_none=True, validate=validate.Range(0, 100),
        metadata={"description": "0-100, or null to use the computed priority (supervisor)."},
    )

    @validates_schema
    def something(self, data: dict, **kwargs) -> None:
        if not data:
            raise ValidationError("Send tags, priority_override or both.", "body")


class AssignSchema(StrictSchema):
    user_id = fields.UUID(required=True)


class MoveFieldsSchema(StrictSchema):
    """The fields of a state move, shared by transitions and bulk transitions."""

    reason = text(
        MAX_REASON_CHARS, allow_none=True, description="Why; required for reason_code other."
    )
    reason_code = fields.String(
        allow_none=True, validate=validate.OneOf(DISMISS_REASON_CODES),
        metadata={"description": "For dismissed: " + ", ".join(DISMISS_REASON_CODES)},
    )
    duplicate_of = fields.UUID(
        allow_none=True, metadata={"description": "For duplicate: the report it repeats."}
    )


class TransitionSchema(MoveFieldsSchema):
    to = fields.String(required=True, validate=validate.OneOf(STATES))


class NoteCreateSchema(StrictSchema):
    body = text(MAX_NOTE_CHARS, required=True)


class ReplyCreateSchema(StrictSchema):
    body = text(MAX_REPLY_CHARS, required=True)


BULK_FIELDS = {
    "transition": {"to", "reason", "reason_code", "duplicate_of"},
    "assign": {"user_id"},
    "add_tags": {"tags"},
    "remove_tags": {"tags"},
}
BULK_REQUIRED = {"transition": {"to"}, "assign": {"user_id"}, "add_tags": {"tags"},
                 "remove_tags": {"tags"}}


class BulkSchema(MoveFieldsSchema):
    """Each report is handled on its own and to its current version (bulk takes no If-Match)."""

    ids = fields.List(fields.UUID(), required=True,
                      validate=validate.Length(min=1, max=MAX_BULK_IDS))
    action = fields.String(required=True, validate=validate.OneOf(list(BULK_FIELDS)))
    to = fields.String(validate=validate.OneOf(STATES))
    user_id = fields.UUID()
    tags = _tag_list()

    @validates_schema
    def fields_of_the_action(self, data: dict, **kwargs) -> None:
        action = data.get("action")
        if action not in BULK_FIELDS:
            return
        given = set(data) - {"ids", "action"}
        errors = {name: [f"Not used by {action}."] for name in given - BULK_FIELDS[action]}
        errors.update({name: [f"Required for {action}."]
                       for name in BULK_REQUIRED[action] - given})
        if errors:
            raise ValidationError(errors)


# -- responses ---------------------------------------------------------------------------------


class PersonSchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)


class SummaryLocationSchema(Schema):
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)
    accuracy_m = fields.Float(allow_none=True)


class ReportSummarySchema(Schema):
    id = fields.UUID(required=True)
    reference = fields.String(required=True)
    state = fields.String(required=True)
    priority = fields.Integer(allow_none=True)
    created_at = UtcDateTime(required=True)
    occurred_at = UtcDateTime(allow_none=True)
    exploitation_types = fields.List(fields.String(), required=True)
    tags = fields.List(fields.String(), required=True)
    assignee = fields.Nested(PersonSchema, allow_none=True)
    areas = fields.List(fields.String(), required=True, metadata={"description": "Area codes."})
    photo_count = fields.Integer(required=True)
    possible_duplicate_count = fields.Integer(required=True)
    excerpt = fields.String(required=True, metadata={"description": "At most 200 characters."})
    location = fields.Nested(SummaryLocationSchema, allow_none=True)


class QueuePageSchema(Schema):
    items = fields.List(fields.Nested(ReportSummarySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "Reports per state (with counts=1)."})


class DetailLocationSchema(SummaryLocationSchema):
    source = fields.String(allow_none=True)


class AppSchema(Schema):
    platform = fields.String(allow_none=True)
    version = fields.String(allow_none=True)


class ContactPresenceSchema(Schema):
    present = fields.Boolean(required=True)


class AreaRefSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class GpsSchema(Schema):
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)


def _photo_url(variant: str):
    return lambda photo: (PHOTO_URL.format(id=photo["id"], variant=variant)
                          if photo["ready"] else None)


class StaffPhotoSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    taken_at = fields.String(
        allow_none=True,
        metadata={"description": "From the original: UTC, or the camera's clock without a zone."},
    )
    gps = fields.Nested(GpsSchema, allow_none=True)
    display_url = fields.Function(_photo_url("display"), allow_none=True)
    thumb_url = fields.Function(_photo_url("thumb"), allow_none=True)


class StaffMessageSchema(Schema):
    id = fields.UUID(required=True)
    from_ = fields.String(data_key="from", attribute="from", required=True)
    body = fields.String(required=True)
    sent_at = UtcDateTime(required=True)
    author = fields.Nested(PersonSchema, allow_none=True,
                           metadata={"description": "The analyst (staff only)."})


class NoteSchema(Schema):
    id = fields.UUID(required=True)
    body = fields.String(required=True)
    author = fields.Nested(PersonSchema, allow_none=True)
    created_at = UtcDateTime(required=True)


class PossibleDuplicateSchema(Schema):
    id = fields.UUID(required=True)
    reference = fields.String(required=True)
    distance_m = fields.Float(allow_none=True)
    hours_apart = fields.Float(required=True)
    text_similarity = fields.Float(required=True)
    photo_match = fields.Boolean(required=True)


class HistoryEventSchema(Schema):
    at = UtcDateTime(required=True)
    actor = fields.Nested(PersonSchema, allow_none=True)
    action = fields.String(required=True)
    detail = fields.Dict(required=True)


class ReportDetailSchema(Schema):
    id = fields.UUID(required=True)
    reference = fields.String(required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)
    description = fields.String(required=True)
    exploitation_types = fields.List(fields.String(), required=True)
    location = fields.Nested(DetailLocationSchema, allow_none=True)
    place = fields.String(allow_none=True)
    occurred_at = UtcDateTime(allow_none=True)
    occurred_precision = fields.String(required=True)
    ongoing = fields.Boolean(required=True)
    people = fields.Dict(allow_none=True)
    vehicles = fields.List(fields.Dict(), allow_none=True)
    language = fields.String(allow_none=True)
    app = fields.Nested(AppSchema, allow_none=True)
    contact = fields.Nested(ContactPresenceSchema, required=True)
    state = fields.String(required=True)
    version = fields.Integer(required=True)
    priority = fields.Integer(allow_none=True)
    priority_reasons = fields.List(fields.String(), required=True)
    priority_override = fields.Integer(allow_none=True)
    enrichment_failed = fields.Boolean(required=True)
    duplicate_of = fields.UUID(allow_none=True)
    dismiss_reason_code = fields.String(allow_none=True)
    assignee = fields.Nested(PersonSchema, allow_none=True)
    tags = fields.List(fields.String(), required=True)
    areas = fields.List(fields.Nested(AreaRefSchema), required=True)
    photos = fields.List(fields.Nested(StaffPhotoSchema), required=True)
    messages = fields.List(fields.Nested(StaffMessageSchema), required=True)
    notes = fields.List(fields.Nested(NoteSchema), required=True)
    possible_duplicates = fields.List(fields.Nested(PossibleDuplicateSchema), required=True)
    history = fields.List(fields.Nested(HistoryEventSchema), required=True)


class ReportStateSchema(Schema):
    """The answer to a change: the report's new version (also in ETag) and what may have moved."""

    id = fields.UUID(required=True)
    version = fields.Integer(required=True)
    state = fields.String(required=True)
    assignee_id = fields.UUID(allow_none=True)
    tags = fields.List(fields.String(), required=True)
    priority = fields.Integer(allow_none=True)
    priority_override = fields.Integer(allow_none=True)


class BulkResultSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.Integer(required=True)
    version = fields.Integer(metadata={"description": "The new version, when it worked."})
    problem = fields.Dict(metadata={"description": "A problem object, when it did not."})


class BulkResultsSchema(Schema):
    results = fields.List(fields.Nested(BulkResultSchema), required=True)


class ContactDetailsSchema(Schema):
    name = fields.String()
    phone = fields.String()
    email = fields.String()
