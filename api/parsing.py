"""Reading requests strictly: JSON bodies, idempotency keys and receipts.

Everything that is not exactly what the contract says is refused with a problem naming the
field, before any service runs, so bad input never changes anything.
"""

from __future__ import annotations

import json
import re
import uuid

from flask import request
from marshmallow import Schema, fields
from marshmallow import ValidationError as SchemaError

from api.fastload import GIVE_UP, fast_load
from stopapp.errors import BadRequestError, UnsupportedMediaTypeError, ValidationError

# JSON nested deeper than this is refused before it reaches a schema (no request of the
# contract goes past 4 levels).
MAX_JSON_DEPTH = 32
RECEIPT_HEADER = "X-Report-Receipt"
# Every answer about a report or a person: no cache on the way may keep it.
NO_STORE = {"Cache-Control": "no-store"}
# The only way a lone surrogate gets into parsed JSON (the UTF-8 text itself cannot hold one).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _check_structure(value, max_depth: int) -> None:
    """Refuse nesting deeper than `max_depth` and strings that are not valid Unicode.

    JSON's \\uXXXX escapes can spell a lone UTF-16 surrogate, which is not a character: it
    cannot be stored or even echoed back in UTF-8, so it is refused like invalid UTF-8.
    """
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > max_depth:
            raise BadRequestError("The JSON is nested too deeply.")
        if isinstance(item, dict):
            stack.extend((k, level + 1) for k in item)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise BadRequestError("The body holds an unpaired UTF-16 surrogate.") from exc


def flatten_errors(messages, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages, flat: {"location.lat": [...], "vehicles.0.plate": [...]}."""
    if isinstance(messages, list | tuple):
        return {prefix or "body": [str(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        path = prefix if key == "_schema" else f"{prefix}.{key}" if prefix else str(key)
        for field, texts in flatten_errors(value, path).items():
            flat.setdefault(field, []).extend(texts)
    return flat


def read_json() -> object:
    """The request body parsed as strict JSON.

    Raises UnsupportedMediaTypeError unless the body is declared application/json,
    BadRequestError for anything that is not valid UTF-8 JSON (NaN and Infinity included),
    and lets Werkzeug's 413 through for bodies over the configured limit.
    """
    if request.mimetype != "application/json":
        raise UnsupportedMediaTypeError("Send the body as application/json.")
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError("The body is not valid UTF-8.") from exc
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise BadRequestError("The body is not valid JSON.") from exc
    # The walk is needed only when the text could break a rule: fewer brackets than the depth
    # limit cannot nest too deeply, and without a surrogate escape there is no lone surrogate.
    if (text.count("{") + text.count("[") >= MAX_JSON_DEPTH
            or _SURROGATE_ESCAPE.search(text) is not None):
        _check_structure(data, MAX_JSON_DEPTH)
    return data


def load_body(schema: Schema) -> dict:
    """Read the JSON body and validate it with `schema`.

    Raises ValidationError (422) with field paths when it breaks a rule, and what read_json raises.
    """
    data = read_json()
    if not isinstance(data, dict):
        raise ValidationError(
            "The body must be a JSON object.", errors={"body": ["Not an object."]}
        )
    loaded = fast_load(schema, data)  # the same result for a valid body, without the machinery
    if loaded is not GIVE_UP:
        return loaded
    try:
        return schema.load(data)
    except SchemaError as exc:
        raise ValidationError(
            "The request breaks the rules of the API.", errors=flatten_errors(exc.messages)
        ) from exc


def idempotency_key() -> uuid.UUID:
    """The required Idempotency-Key header, a UUID.

    Raises ValidationError when it is missing or not a UUID.
    """
    raw = request.headers.get("Idempotency-Key", "").strip()
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        problem = "Required." if not raw else "Must be a UUID."
        raise ValidationError(
            "Send a UUID in the Idempotency-Key header.", errors={"Idempotency-Key": [problem]}
        ) from exc


def receipt() -> str | None:
    """The X-Report-Receipt header, if any (never logged)."""
    return request.headers.get(RECEIPT_HEADER)


PHOTO_FIELD = "photo"
# Room for the multipart framing around a photo of the maximum size.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def photo_upload(max_photo_bytes: int):
    """A callable that parses the multipart body and returns the stream of its one photo.

    The body is read only when the callable is called (after the receipt was checked). While
    it streams in, Werkzeug stops at the size limit with a 413.

    The callable raises UnsupportedMediaTypeError unless the body is multipart/form-data, and
    ValidationError unless it holds exactly one file, in the field `photo`, and nothing else.
    """
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaTypeError("Send the photo as multipart/form-data.")
    request.max_content_length = max_photo_bytes + MULTIPART_OVERHEAD_BYTES

    def open_upload():
        files, form = request.files, request.form
        unknown = sorted((set(files) | set(form)) - {PHOTO_FIELD})
        errors = {name: ["Unknown field."] for name in unknown}
        if len(files.getlist(PHOTO_FIELD)) != 1:
            errors[PHOTO_FIELD] = ["Send exactly one file in this field."]
        if errors:
            raise ValidationError("The upload breaks the rules of the API.", errors=errors)
        return files[PHOTO_FIELD].stream

    return open_upload


def load_query(schema: Schema) -> dict:
    """Validate the query string with `schema` (unknown parameters are refused).

    A parameter may repeat only where the schema has a list. Raises ValidationError (422)
    naming the parameters.
    """
    by_key = {field.data_key or name: field for name, field in schema.fields.items()}
    data: dict = {}
    errors: dict[str, list[str]] = {}
    for key in request.args:
        values = request.args.getlist(key)
        if isinstance(by_key.get(key), fields.List):
            data[key] = values
        elif len(values) > 1:
            errors[key] = ["Give this parameter once."]
        else:
            data[key] = values[0]
    try:
        loaded = schema.load(data)
    except SchemaError as exc:
        errors.update(flatten_errors(exc.messages))
        loaded = None
    if errors:
        raise ValidationError("The query breaks the rules of the API.", errors=errors)
    return loaded


# An entity tag as the staff API gives it: the report's version in quotes.
_ENTITY_TAG = re.compile(r'\s*"([0-9]{1,9})"\s*')


def if_match() -> frozenset[int] | None:
    """The versions named by If-Match (None without the header; unparsable tags match none)."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    return frozenset(
        int(m.group(1)) for part in raw.split(",") if (m := _ENTITY_TAG.fullmatch(part))
    )
