"""schemathesis hooks for the rules that JSON Schema cannot state (see tests/schemathesis.toml).

Only schema-valid (positive) requests are touched, and only where validity depends on something
outside the request: the taxonomy in the database, the clock, the content of an image, the
keys already used (a key reused with another body is refused, as the contract says), and for the
staff operations the report's current version (If-Match), the staff, areas and authority names
that exist, paging cursors the server issued, and PGP keys (judged by gpg). Negative requests are
sent as generated, so the server must still refuse every one of them.

tests/test_openapi_live.py passes the API's base URL, an admin's token and id in the
environment (STOPAPP_SCHEMATHESIS_URL, _TOKEN, _USER).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import schemathesis
from schemathesis.transport.serialization import Binary

from api.schemas import EARLIEST, MAX_FUTURE
from stopapp.reports.taxonomy import BUILTIN_TYPES

CODES = sorted(BUILTIN_TYPES)
# Imported by the `live` fixture (tests/test_openapi_live.py) from
# tests/data/geo/london_hf_kc_westminster.geojson.
AREA_CODES = ["E09000013", "E09000020", "E09000033"]
BASE_URL = os.environ.get("STOPAPP_SCHEMATHESIS_URL", "")
TOKEN = os.environ.get("STOPAPP_SCHEMATHESIS_TOKEN", "")
ADMIN_ID = os.environ.get("STOPAPP_SCHEMATHESIS_USER", "")
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
    if case.headers and "If-Match" in case.headers:
        # Only the current version is valid, and only the server knows it: read the report.
        version = _current_etag(case.path_parameters.get("report_id"))
        if version is not None:
            case.headers = {**case.headers, "If-Match": version}
    if case.query and case.operation.path in ("/triage/reports", "/triage/audit"):
        case.query = _staff_query(dict(case.query))
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
    _staff_body(case.operation.path, case.body)
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


def _current_etag(report_id) -> str | None:
    request = urllib.request.Request(f"{BASE_URL}/triage/reports/{report_id}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.headers["ETag"]
    except urllib.error.HTTPError:
        return None  # no such report: the change will answer 404, as documented


def _staff_query(query: dict) -> dict:
    # A cursor is valid only as the server issued it.
    query.pop("cursor", None)
    # The document states the form of a box; its ranges and order are checked by the server.
    bbox = query.get("bbox")
    if isinstance(bbox, str):
        west, south, east, north = (float(v) for v in bbox.split(","))
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            query["bbox"] = "-0.25,51.48,-0.1,51.53"
    return query


def _staff_body(path: str, body: dict) -> None:
    """State a staff body's values can only name: staff, areas, types, names and keys."""
    if "user_id" in body:
        body["user_id"] = ADMIN_ID  # an active member of staff
    if path.startswith("/triage/reports") and isinstance(body.get("tags"), list):
        # A coded tag must be live in the taxonomy (the database), a free one printable text
        # (Unicode's notion, which JSON Schema cannot state).
        body["tags"] = [f"free:tag {len(str(tag))}" for tag in body["tags"]]
    if path.startswith("/triage/authorities"):
        if isinstance(body.get("area_codes"), list):
            body["area_codes"] = [
                AREA_CODES[len(str(code)) % len(AREA_CODES)] for code in body["area_codes"]]
        if isinstance(body.get("exploitation_types"), list):
            body["exploitation_types"] = [
                CODES[len(str(code)) % len(CODES)] for code in body["exploitation_types"]]
        if "name" in body:
            body["name"] = f"Authority {uuid.uuid4()}"  # names are unique
        if "pgp_public_key" in body:
            body["pgp_public_key"] = None  # gpg judges a key; none is valid
