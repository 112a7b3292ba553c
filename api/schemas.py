"""The wire format of the public API, as marshmallow schemas.

These schemas are the single source of truth: they validate requests, serialise responses,
and are converted into the OpenAPI document (api/openapi.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from stopapp.constants import (
    REPORTER_STATUS,
    LocationSource,
    MessageSender,
    OccurredPrecision,
    PhotoStatus,
)

MAX_DESCRIPTION_CHARS = 10_000
MAX_MESSAGE_CHARS = 5_000
MAX_FUTURE = timedelta(minutes=5)
# Nothing reported can have happened earlier; it also keeps every date representable in UTC
# (an offset on 0001-01-01 would fall before year 1, which PostgreSQL stores but cannot return).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)

# What Python calls white space (str.isspace), spelled out: ECMA-262's \s is another set (it
# has U+FEFF and lacks U+001C-U+001F and U+0085), so no pattern in the document may use \s.
WHITE_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Some character that is neither white space nor NUL, and no NUL anywhere (PostgreSQL text
# cannot hold U+0000).
TEXT_PATTERN = rf"^[^\x00]*[^\x00{WHITE_SPACE}][^\x00]*$"
# Escapes and groups that ECMA-262 reads differently or not at all: \d, \w, \s and \b are
# Unicode-aware in Python and ASCII in ECMA-262; \A, \Z and inline flags are Python's only.
_NOT_PORTABLE = re.compile(r"\\[dDwWsSbBAZz]|\(\?[A-Za-z]|(?<!\\)\$.")


class Pattern(validate.Validator):
    """The value must contain a match of `pattern`, searched as JSON Schema does.

    The same text is the field's `pattern` in the OpenAPI document, an ECMA-262 regular
    expression, so it may only use what both engines read alike (see _NOT_PORTABLE). A final `$`
    is checked as Python's \\Z: Python's `$` would also match before a final newline.
    """

    def __init__(
        self, pattern: str, error: str = "String does not match expected pattern."
    ) -> None:
        if _NOT_PORTABLE.search(pattern):
            raise ValueError(f"not portable to ECMA-262: {pattern}")
        self.regex = re.compile(pattern)  # what apispec puts in the document
        self._python = re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)
        self.error = error

    def __call__(self, value: str) -> str:
        if self._python.search(value) is None:
            raise ValidationError(self.error)
        return value


class TextRule(Pattern):
    """Not blank and no NUL, as TEXT_PATTERN says, with a message for each."""

    def __init__(self) -> None:
        super().__init__(TEXT_PATTERN, error="Must not be blank.")

    def __call__(self, value: str) -> str:
        if "\x00" in value:
            raise ValidationError("Must not contain NUL characters.")
        return super().__call__(value)


class StrictFloat(fields.Float):
    """A JSON number; strings and booleans are refused rather than coerced."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Must be a number.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictInteger(fields.Integer):
    """A JSON integer; strings, booleans and fractions are refused.

    3.0 is taken as 3: JSON and JSON Schema (the OpenAPI document's `integer`) make no
    difference between them, and some clients' encoders write every number with a fraction.
    """

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false only (marshmallow would also take "yes", 1, "on"...)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value


class UtcDateTime(fields.AwareDateTime):
    """RFC 3339 with a zone on input; always UTC with a Z, to the second, on output."""

    def __init__(self, **kwargs):
        super().__init__(format="iso", **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def text(max_chars: int, *, min_chars: int = 1, description: str = "", **kwargs) -> fields.String:
    """A text field with length bounds that also refuses text made only of white space."""
    return fields.String(
        validate=[
            validate.Length(min=min_chars, max=max_chars),
            TextRule(),
        ],
        metadata={"description": description} if description else {},
        **kwargs,
    )


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class LocationSchema(StrictSchema):
    lat = StrictFloat(
        required=True, allow_nan=False, validate=validate.Range(-90, 90),
        metadata={"description": "Latitude, WGS 84 degrees."},
    )
    lon = StrictFloat(
        required=True, allow_nan=False, validate=validate.Range(-180, 180),
        metadata={"description": "Longitude, WGS 84 degrees."},
    )
    accuracy_m = StrictFloat(
        allow_nan=False, validate=validate.Range(min=0, max=20_000_000),
        metadata={"description": "Radius of uncertainty in metres."},
    )
    source = fields.String(
        validate=validate.OneOf([s.value for s in LocationSource]),
        metadata={"description": "gps, map (a pin the reporter placed) or text (geocoded)."},
    )


class PeopleSchema(StrictSchema):
    victims = StrictInteger(validate=validate.Range(0, 100_000))
    minors = StrictBoolean()
    suspects = StrictInteger(validate=validate.Range(0, 100_000))
    description = text(MAX_DESCRIPTION_CHARS)


class VehicleSchema(StrictSchema):
    description = text(1_000)
    registration = text(20)


class ContactSchema(StrictSchema):
    name = text(200)
    phone = fields.String(validate=Pattern(r"^\+?[0-9 ()./-]{3,40}$"))
    email = fields.Email(validate=validate.Length(max=254))
    consent_to_contact = StrictBoolean(
        metadata={"description": "Without true, nothing of the contact is stored."}
    )


class AppInfoSchema(StrictSchema):
    platform = fields.String(validate=validate.OneOf(["android", "ios", "web", "other"]))
    version = fields.String(validate=Pattern(r"^[0-9A-Za-z.+-]{1,32}$"))


class ReportCreateSchema(StrictSchema):
    """POST /api/v1/reports."""

    description = text(
        MAX_DESCRIPTION_CHARS, required=True, description="What was seen or heard."
    )
    exploitation_types = fields.List(
        fields.String(validate=validate.Length(1, 64)),
        validate=validate.Length(min=1, max=20),
        metadata={"description": "Codes from GET /api/v1/meta; default [\"unknown\"]."},
    )
    location = fields.Nested(LocationSchema)
    place = text(500, description="Where, in the reporter's words.")
    occurred_at = UtcDateTime(metadata={"description": "RFC 3339; at most 5 minutes ahead."})
    occurred_precision = fields.String(
        validate=validate.OneOf([p.value for p in OccurredPrecision])
    )
    ongoing = StrictBoolean()
    people = fields.Nested(PeopleSchema)
    vehicles = fields.List(fields.Nested(VehicleSchema), validate=validate.Length(max=20))
    language = fields.String(
        validate=Pattern(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$"),
        metadata={"description": "BCP 47 language tag of the description."},
    )
    contact = fields.Nested(ContactSchema)
    app = fields.Nested(AppInfoSchema)

    # location_or_place, for the OpenAPI document (api/openapi.py). Inside allOf: client
    # generators read an anyOf beside `properties` as a union and lose the model.
    json_schema_rules: ClassVar[dict] = {
        "allOf": [{"anyOf": [{"required": ["location"]}, {"required": ["place"]}]}]
    }

    @validates_schema
    def location_or_place(self, data: dict, **kwargs) -> None:
        if data.get("location") is None and data.get("place") is None:
            raise ValidationError("Give a location, a place, or both.", "location")

    @validates_schema
    def not_in_future(self, data: dict, **kwargs) -> None:
        occurred_at = data.get("occurred_at")
        if occurred_at is not None and occurred_at > datetime.now(UTC) + MAX_FUTURE:
            raise ValidationError("Must not be more than 5 minutes in the future.", "occurred_at")
        if occurred_at is not None and occurred_at < EARLIEST:
            raise ValidationError("Must not be before 1900.", "occurred_at")


class ReportCreatedSchema(Schema):
    id = fields.UUID(required=True)
    receipt = fields.String(
        required=True, metadata={"description": "Keep it secret: it is the only key to the report."}
    )
    status = fields.String(required=True, metadata={"enum": ["received"]})
    created_at = UtcDateTime(required=True)
    max_photos = fields.Integer(required=True)


class PhotoStateSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"enum": [s.value for s in PhotoStatus]})
    reason = fields.String(
        allow_none=True, metadata={"description": "Why a photo was rejected (a code)."}
    )


class MessageSchema(Schema):
    id = fields.UUID(required=True)
    from_ = fields.String(
        data_key="from", attribute="from", required=True,
        metadata={"enum": [s.value for s in MessageSender]},
    )
    body = fields.String(required=True)
    sent_at = UtcDateTime(required=True)


class ReportStatusSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.String(
        required=True, metadata={"enum": sorted(set(REPORTER_STATUS.values()))}
    )
    updated_at = UtcDateTime(required=True)
    photos = fields.List(fields.Nested(PhotoStateSchema), required=True)
    messages = fields.List(fields.Nested(MessageSchema), required=True)


class MessageCreateSchema(StrictSchema):
    body = text(MAX_MESSAGE_CHARS, required=True)


class PhotoAcceptedSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"enum": [PhotoStatus.PROCESSING.value]})


class PhotoUploadSchema(StrictSchema):
    """The multipart body of a photo upload, for the document only: api/parsing.py reads it."""

    photo = fields.Raw(
        required=True,
        metadata={"type": "string", "format": "binary",
                  "description": "One JPEG, PNG, WebP or HEIC/HEIF photo; judged by its content."},
    )


class ExploitationTypeSchema(Schema):
    code = fields.String(required=True)
    labels = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class PhotoLimitsSchema(Schema):
    max_bytes = fields.Integer(required=True)
    max_photos_per_report = fields.Integer(required=True)
    max_pixels = fields.Integer(required=True)
    accepted_types = fields.List(fields.String(), required=True)


class MetaSchema(Schema):
    api_version = fields.String(required=True)
    languages = fields.List(fields.String(), required=True)
    exploitation_types = fields.List(fields.Nested(ExploitationTypeSchema), required=True)
    photo_limits = fields.Nested(PhotoLimitsSchema, required=True)


class ProblemSchema(Schema):
    """RFC 9457: a problem type may add members (412 names the current `version`), so the
    document allows more properties."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()),
        metadata={"description": "Field path (location.lat) to messages."},
    )
