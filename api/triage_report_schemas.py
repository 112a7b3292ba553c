"""The wire format of the analysts' report endpoints (STAFF_API.md, "Reports" and "Photos")."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from typing import ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.schemas import Pattern, StrictInteger, StrictSchema, TextRule, UtcDateTime, text
from stopapp.constants import ReportState
from stopapp.review.queue import DEFAULT_LIMIT, MAX_LIMIT, SORTS
from stopapp.review.services import (
    DISMISS_REASON_CODES,
    MAX_BULK_IDS,
    MAX_CONTACT_REASON_CHARS,
    MAX_NOTE_CHARS,
    MAX_REASON_CHARS,
    MAX_REPLY_CHARS,
    MAX_TAGS,
)

STATES = [s.value for s in ReportState]
PHOTO_URL = "/api/v1/triage/photos/{id}/{variant}"


# -- the queue's query string ----------------------------------------------------------------------


_NUMBER = r"-?[0-9]{1,3}(\.[0-9]{1,15})?"
BBOX = Pattern(rf"^{_NUMBER}(,{_NUMBER}){{3}}$", "Four numbers: minLon,minLat,maxLon,maxLat.")
_HEX = "[0-9A-Fa-f]"
ASSIGNEE = Pattern(
    rf"^(me|none|{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})$",
    "me, none or a user id.",
)


class BBoxField(fields.String):
    """`minLon,minLat,maxLon,maxLat` in WGS 84 degrees, west to east and south to north.

    The document states the form (BBOX); the ranges and their order are checked here only."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"pattern": BBOX.regex.pattern,
                                   "description": "minLon,minLat,maxLon,maxLat (WGS 84)."},
                         **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        min_lon, min_lat, max_lon, max_lat = (
            float(p) for p in BBOX(super()._deserialize(value, attr, data, **kwargs)).split(",")
        )
        if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
            raise ValidationError(
                "Longitudes within -180..180 and latitudes within -90..90, minimum below maximum."
            )
        return min_lon, min_lat, max_lon, max_lat


class AssigneeField(fields.String):
    """`me`, `none` or a user id."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"pattern": ASSIGNEE.regex.pattern,
                                   "description": "me, none or a user id."}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = ASSIGNEE(super()._deserialize(value, attr, data, **kwargs))
        return value if value in ("me", "none") else uuid.UUID(value)


class FlagField(fields.String):
    """1 (or true) and 0 (or false)."""

    VALUES = {"1": True, "true": True, "0": False, "false": False}

    def __init__(self, description: str, **kwargs):
        super().__init__(
            metadata={"enum": list(self.VALUES), "default": "0", "description": description},
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if value not in self.VALUES:
            raise ValidationError("1 or 0.")
        return self.VALUES[value]


class QueueQuerySchema(StrictSchema):
    """GET /api/v1/triage/reports. `state` and `tag` may be repeated; the rest may not."""

    state = fields.List(fields.String(validate=validate.OneOf(STATES)),
                        validate=validate.Length(min=1, max=len(STATES)),
                        metadata={"description": "Repeatable; default new and in_review."})
    type = fields.String(validate=[validate.Length(1, 64), TextRule()],
                         metadata={"description": "An exploitation type code."})
    tag = fields.List(fields.String(validate=[validate.Length(1, 200), TextRule()]),
                      validate=validate.Length(min=1, max=MAX_TAGS),
                      metadata={"description": "Repeatable; every one must be on the report."})
    assignee = AssigneeField()
    area = fields.String(validate=[validate.Length(1, 64), TextRule()],
                         metadata={"description": "An area code."})
    bbox = BBoxField()
    created_from = UtcDateTime(metadata={"description": "RFC 3339; inclusive."})
    created_to = UtcDateTime(metadata={"description": "RFC 3339; exclusive."})
    q = fields.String(
        validate=[validate.Length(1, 500), TextRule()],
        metadata={"description": "Full text over description and place (web search syntax)."},
    )
    sort = fields.String(validate=validate.OneOf(SORTS), load_default="priority")
    limit = fields.Integer(validate=validate.Range(1, MAX_LIMIT), load_default=DEFAULT_LIMIT)
    cursor = fields.String(validate=validate.Length(1, 500),
                           metadata={"description": "next_cursor of the previous page."})
    counts = FlagField("1 adds the number of reports per state.", load_default=False)


class ContactQuerySchema(StrictSchema):
    """GET /api/v1/triage/reports/{id}/contact."""

    reason = text(MAX_CONTACT_REASON_CHARS, required=True,
                  description="Why you need them (audited).")


# -- requests ----------------------------------------------------------------------------------


def _tag_list(**kwargs) -> fields.List:
    return fields.List(
        fields.String(validate=[validate.Length(1, 200), TextRule()]),
        validate=validate.Length(max=MAX_TAGS),
        metadata={"description": "dimension:code from GET /triage/taxonomy, or free:<text>."},
        **kwargs,
    )


class ReportPatchSchema(StrictSchema):
    # The rule of something() below, for the OpenAPI document.
    json_schema_rules: ClassVar[dict] = {"minProperties": 1}

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


def _bulk_action_schema(name: str, actions: list[str]) -> type[Schema]:
    """BulkSchema for `actions` only, for the document: the fields of other actions are
    refused, as BulkSchema.fields_of_the_action refuses them."""
    declared = BulkSchema._declared_fields
    chosen = {"ids": declared["ids"],
              "action": fields.String(required=True, validate=validate.OneOf(actions))}
    for field_name in sorted(BULK_FIELDS[actions[0]]):
        chosen[field_name] = copy.deepcopy(declared[field_name])
        chosen[field_name].required = field_name in BULK_REQUIRED[actions[0]]
    return StrictSchema.from_dict(chosen, name=name)


# The body of POST /triage/reports/bulk in the document: one schema per kind of action.
BULK_BODY = {"oneOf": [
    _bulk_action_schema("BulkTransitionSchema", ["transition"]),
    _bulk_action_schema("BulkAssignSchema", ["assign"]),
    _bulk_action_schema("BulkTagsSchema", ["add_tags", "remove_tags"]),
]}


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


def _utc(value: datetime | None) -> str | None:
    return UtcDateTime()._serialize(value, None, None)


def dump_summary(item: dict) -> dict:
    """ReportSummarySchema().dump(item), written out: marshmallow spends about 0.1 ms on each
    summary, which made a queue page several times slower than its SQL. A test keeps the two
    identical."""
    assignee = item["assignee"]
    body = {
        **item,
        "id": str(item["id"]),
        "created_at": _utc(item["created_at"]),
        "occurred_at": _utc(item["occurred_at"]),
        "assignee": assignee and {"id": str(assignee["id"]), "name": assignee["name"]},
    }
    # The service's summary also carries the reasons and the override for the web queue; the
    # contract's summary (STAFF_API.md) does not, as the schema's dump leaves out every
    # undeclared key.
    body.pop("priority_reasons", None)
    body.pop("priority_override", None)
    return body


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
