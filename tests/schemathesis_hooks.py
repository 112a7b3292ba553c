"""schemathesis hooks for the rules that JSON Schema cannot state (see tests/schemathesis.toml).

Only schema-valid (positive) requests are touched, and only where validity depends on something
outside the request: the taxonomy in the database, the clock, the content of an image, and the
keys already used (a key reused with another body is refused, as the contract says). Negative
requests are sent as generated, so the server must still refuse every one of them.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import schemathesis
from schemathesis.transport.serialization import Binary

from api.schemas import EARLIEST, MAX_FUTURE
from stopapp.reports.taxonomy import BUILTIN_TYPES

CODES = sorted(BUILTIN_TYPES)
PHOTO = (Path(os.environ.get("STOPAPP_TESTDATA", Path(__file__).parent / "data"))
         / "photos" / "flower_exif_makernote.webp").read_bytes()


def _in_range(value: str) -> bool:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return EARLIEST <= moment.astimezone(UTC) <= datetime.now(UTC) + MAX_FUTURE


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not all(
        component.mode.is_positive for component in meta.components.values()
    ):
        return
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers = {**case.headers, "Idempotency-Key": str(uuid.uuid4())}
    if not isinstance(case.body, dict):
        return
    if case.operation.path.endswith("/photos") and "photo" in case.body:
        # A photo is judged by its content, which no schema describes. schemathesis cannot
        # judge a body holding bytes and would call the changed one invalid: tell it (a private
        # method of the pinned version) that the body is still the one it generated.
        case.body["photo"] = Binary(PHOTO)
        case._sync_validated_hashes()
        return
    case.body = dict(case.body)
    if case.operation.path == "/reports" and case.method.upper() == "POST":
        # Codes come from GET /meta: admins can add some, so the document cannot list them.
        if "exploitation_types" in case.body:
            case.body["exploitation_types"] = [
                CODES[len(str(code)) % len(CODES)] for code in case.body["exploitation_types"]
            ]
        # "At most 5 minutes ahead" and "not before 1900" depend on the clock and the zone.
        occurred_at = case.body.get("occurred_at")
        if isinstance(occurred_at, str):
            try:
                valid = _in_range(occurred_at)
            except ValueError:
                valid = True  # leave what Python cannot parse to the server to judge
            if not valid:
                case.body["occurred_at"] = (datetime.now(UTC) - timedelta(days=1)).isoformat()
