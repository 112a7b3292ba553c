"""Every validation rule of the public API (docs/api.md), and hostile input, on the real app.

Each refused request is checked three ways: its status, a problem+json body naming the failing
field path, and that nothing changed (no row stored, no job queued).
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from stopapp.extensions import db
from stopapp.models import Report
from tests.conftest import VALID_REPORT, new_key, submit
from tests.helpers import assert_problem, counts

REPORTS = "/api/v1/reports"
TRIAGE_QUEUE = "rq:queue:triage"
NOTHING = {"reports": 0, "report_messages": 0, "photos": 0}
ONE_REPORT = {**NOTHING, "reports": 1}
RECEIPT = "X-Report-Receipt"
PROBLEM = "application/problem+json"

Mutation = Callable[[dict], dict]
_DELETE = object()


# --- building bad bodies --------------------------------------------------------------------


def _walk(body, parts: list[str]):
    for part in parts:
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


def put(path: str, value=_DELETE) -> Mutation:
    """Set the dotted `path` (list items by index) of the body to `value`, or delete it.

    A callable `value` is called when the test runs (for times relative to now).
    """

    def mutate(body: dict) -> dict:
        *parents, last = path.split(".")
        target = _walk(body, parents)
        key = int(last) if isinstance(target, list) else last
        if value is _DELETE:
            del target[key]
        else:
            target[key] = value() if callable(value) else value
        return body

    return mutate


def drop(path: str) -> Mutation:
    return put(path)


def both(*mutations: Mutation) -> Mutation:
    def mutate(body: dict) -> dict:
        for mutation in mutations:
            body = mutation(body)
        return body

    return mutate


def mutated(mutation: Mutation) -> dict:
    return mutation(copy.deepcopy(VALID_REPORT))


def from_now(**delta) -> Callable[[], str]:
    return lambda: (datetime.now(UTC) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


def nested_objects(levels: int) -> dict:
    value: dict = {"victims": 1}
    for _ in range(levels - 1):
        value = {"inner": value}
    return value


# --- checking that nothing happened ---------------------------------------------------------


def assert_stored(app, redis_conn, rows: dict) -> None:
    """Exactly `rows` are in the tables, and the request queued nothing itself.

    A report's triage job is queued by the dispatcher from the committed row (tests of
    workers/dispatcher.py), so a report refused here can have no job either.
    """
    with app.app_context():
        assert counts() == rows
    assert redis_conn.llen(TRIAGE_QUEUE) == 0


def assert_nothing_stored(app, redis_conn) -> None:
    assert_stored(app, redis_conn, NOTHING)


def stored_report(app) -> Report:
    with app.app_context():
        reports = db.session.scalars(select(Report)).all()
        assert len(reports) == 1
        return reports[0]


# --- POST /api/v1/reports: well-formed JSON that breaks a rule (422) ------------------------

INVALID_REPORTS = [
    # description
    pytest.param(drop("description"), "description", id="description-missing"),
    pytest.param(put("description", ""), "description", id="description-empty"),
    pytest.param(put("description", " \t\n\r "), "description", id="description-whitespace"),
    pytest.param(put("description", "\u00a0\u2003"), "description", id="description-unicode-space"),
    pytest.param(put("description", "x" * 10_001), "description", id="description-10001"),
    pytest.param(put("description", 42), "description", id="description-number"),
    pytest.param(put("description", None), "description", id="description-null"),
    pytest.param(put("description", ["a"]), "description", id="description-list"),
    pytest.param(put("description", {"text": "a"}), "description", id="description-object"),
    # location / place
    pytest.param(both(drop("location"), drop("place")), "location", id="no-location-no-place"),
    pytest.param(both(drop("location"), put("place", None)), "place", id="place-null"),
    pytest.param(put("place", ""), "place", id="place-empty"),
    pytest.param(put("place", "   "), "place", id="place-whitespace"),
    pytest.param(put("place", "p" * 501), "place", id="place-501"),
    pytest.param(put("location.lat", 90.0001), "location.lat", id="lat-over-90"),
    pytest.param(put("location.lat", -90.0001), "location.lat", id="lat-under-minus-90"),
    pytest.param(put("location.lon", 180.0001), "location.lon", id="lon-over-180"),
    pytest.param(put("location.lon", -180.0001), "location.lon", id="lon-under-minus-180"),
    pytest.param(put("location.lat", "51.4"), "location.lat", id="lat-string"),
    pytest.param(put("location.lat", True), "location.lat", id="lat-true"),
    pytest.param(put("location.lat", None), "location.lat", id="lat-null"),
    pytest.param(put("location.lat", 10**400), "location.lat", id="lat-huge-int"),
    pytest.param(drop("location.lat"), "location.lat", id="lat-missing"),
    pytest.param(drop("location.lon"), "location.lon", id="lon-missing"),
    pytest.param(put("location.accuracy_m", -1), "location.accuracy_m", id="accuracy-negative"),
    pytest.param(put("location.accuracy_m", "20"), "location.accuracy_m", id="accuracy-string"),
    pytest.param(put("location.source", "satellite"), "location.source", id="source-unknown"),
    pytest.param(put("location", None), "location", id="location-null"),
    pytest.param(put("location", [51.4, -0.2]), "location", id="location-list"),
    pytest.param(put("location", "51.4,-0.2"), "location", id="location-string"),
    pytest.param(put("location.alt", 12), "location.alt", id="location-unknown-field"),
    # exploitation_types
    pytest.param(
        put("exploitation_types", ["trafficking"]), "exploitation_types", id="type-unknown"
    ),
    pytest.param(
        put("exploitation_types", ["labour", "trafficking"]), "exploitation_types",
        id="type-one-unknown-of-two",
    ),
    pytest.param(put("exploitation_types", []), "exploitation_types", id="types-empty"),
    pytest.param(put("exploitation_types", "labour"), "exploitation_types", id="types-not-list"),
    pytest.param(put("exploitation_types", None), "exploitation_types", id="types-null"),
    pytest.param(
        put("exploitation_types", ["labour"] * 21), "exploitation_types", id="types-21-items"
    ),
    pytest.param(put("exploitation_types", [7]), "exploitation_types.0", id="type-not-string"),
    pytest.param(
        put("exploitation_types", ["labour", None]), "exploitation_types.1", id="type-null-item"
    ),
    pytest.param(put("exploitation_types", [""]), "exploitation_types.0", id="type-empty-string"),
    # occurred_at, occurred_precision, ongoing
    pytest.param(put("occurred_at", from_now(minutes=10)), "occurred_at", id="occurred-future"),
    pytest.param(put("occurred_at", "2026-11-20T14:05:00"), "occurred_at", id="occurred-no-zone"),
    pytest.param(put("occurred_at", "last tuesday"), "occurred_at", id="occurred-garbage"),
    pytest.param(put("occurred_at", "2026-11-20"), "occurred_at", id="occurred-date-only"),
    pytest.param(put("occurred_at", "2026-13-40T25:00:00Z"), "occurred_at", id="occurred-bad-date"),
    pytest.param(put("occurred_at", 1_790_000_000), "occurred_at", id="occurred-number"),
    pytest.param(put("occurred_precision", "year"), "occurred_precision", id="precision-year"),
    pytest.param(put("ongoing", "yes"), "ongoing", id="ongoing-yes"),
    pytest.param(put("ongoing", 1), "ongoing", id="ongoing-1"),
    pytest.param(put("ongoing", None), "ongoing", id="ongoing-null"),
    # people
    pytest.param(put("people.victims", -1), "people.victims", id="victims-negative"),
    pytest.param(put("people.victims", "3"), "people.victims", id="victims-string"),
    pytest.param(put("people.victims", 2.5), "people.victims", id="victims-fraction"),
    pytest.param(put("people.victims", True), "people.victims", id="victims-true"),
    pytest.param(put("people.suspects", -1), "people.suspects", id="suspects-negative"),
    pytest.param(put("people.minors", "no"), "people.minors", id="minors-string"),
    pytest.param(put("people.minors", 0), "people.minors", id="minors-0"),
    pytest.param(put("people.ages", [12, 14]), "people.ages", id="people-unknown-field"),
    pytest.param(put("people", "three men"), "people", id="people-not-object"),
    # vehicles
    pytest.param(
        put("vehicles", [{"description": f"van {i}"} for i in range(21)]), "vehicles",
        id="vehicles-21",
    ),
    pytest.param(
        put("vehicles.0.registration", "R" * 21), "vehicles.0.registration",
        id="registration-21-chars",
    ),
    pytest.param(put("vehicles", "white van"), "vehicles", id="vehicles-not-list"),
    pytest.param(put("vehicles.0.colour", "white"), "vehicles.0.colour", id="vehicle-unknown"),
    pytest.param(put("vehicles", ["white van"]), "vehicles.0", id="vehicle-not-object"),
    # language, app
    pytest.param(put("language", "english words"), "language", id="language-words"),
    pytest.param(put("language", "e"), "language", id="language-one-letter"),
    pytest.param(put("app.platform", "symbian"), "app.platform", id="platform-unknown"),
    pytest.param(put("app.version", "4.1.0; rm -rf"), "app.version", id="app-version-junk"),
    pytest.param(put("app.build", 7), "app.build", id="app-unknown-field"),
    # contact
    pytest.param(
        put("contact", {"email": "not-an-email", "consent_to_contact": True}), "contact.email",
        id="email-invalid",
    ),
    pytest.param(
        put("contact", {"phone": "call me maybe", "consent_to_contact": True}), "contact.phone",
        id="phone-invalid",
    ),
    pytest.param(
        put("contact", {"name": "A", "consent_to_contact": "yes"}), "contact.consent_to_contact",
        id="consent-yes-string",
    ),
    pytest.param(
        put("contact", {"name": "A", "consent_to_contact": True, "address": "1 Road"}),
        "contact.address", id="contact-unknown-field",
    ),
    # unknown top-level field
    pytest.param(put("reporter_ip", "10.0.0.1"), "reporter_ip", id="unknown-top-level"),
]


@pytest.mark.parametrize("mutation, field", INVALID_REPORTS)
def test_invalid_report_is_refused_with_422(client, app, redis_conn, mutation, field):
    response = submit(client, mutated(mutation))
    assert_problem(response, 422, field)
    assert_nothing_stored(app, redis_conn)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="array"),
        pytest.param([VALID_REPORT], id="array-of-report"),
        pytest.param("a report", id="string"),
        pytest.param(None, id="null"),
        pytest.param(42, id="number"),
        pytest.param(True, id="true"),
    ],
)
def test_report_body_that_is_not_an_object_is_422(client, app, redis_conn, body):
    response = client.post(
        REPORTS, data=json.dumps(body), content_type="application/json",
        headers={"Idempotency-Key": new_key()},
    )
    assert_problem(response, 422, "body")
    assert_nothing_stored(app, redis_conn)


# --- POST /api/v1/reports: the edges that are allowed ---------------------------------------

VALID_EDGES = [
    pytest.param(put("description", "d" * 10_000), id="description-10000"),
    pytest.param(put("description", "x"), id="description-1"),
    pytest.param(drop("place"), id="location-only"),
    pytest.param(drop("location"), id="place-only"),
    pytest.param(put("place", "p" * 500), id="place-500"),
    pytest.param(put("location", {"lat": 90, "lon": -180}), id="location-corners-ints"),
    pytest.param(put("location", {"lat": -90.0, "lon": 180.0}), id="location-corners-floats"),
    pytest.param(put("location.accuracy_m", 0), id="accuracy-0"),
    pytest.param(put("occurred_at", from_now(minutes=4)), id="occurred-4-min-future"),
    pytest.param(put("occurred_at", "2026-11-20T15:05:00+01:00"), id="occurred-offset"),
    pytest.param(put("exploitation_types", ["labour"] * 20), id="types-20-items"),
    pytest.param(put("people.victims", 0), id="victims-0"),
    pytest.param(put("vehicles.0.registration", "R" * 20), id="registration-20-chars"),
    pytest.param(
        put("vehicles", [{"description": f"van {i}"} for i in range(20)]), id="vehicles-20"
    ),
    pytest.param(put("language", "pt-BR"), id="language-region"),
    pytest.param(
        lambda body: {"description": body["description"], "place": body["place"]},
        id="only-required",
    ),
]


@pytest.mark.parametrize("mutation", VALID_EDGES)
def test_report_at_the_edges_of_the_rules_is_accepted(client, app, redis_conn, mutation):
    response = submit(client, mutated(mutation))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert_stored(app, redis_conn, ONE_REPORT)


def test_exploitation_types_default_to_unknown(client, app):
    response = submit(client, mutated(drop("exploitation_types")))
    assert response.status_code == 201
    report = stored_report(app)
    assert report.exploitation_types == ["unknown"]


def test_occurred_precision_defaults_to_unknown(client, app):
    response = submit(client, mutated(drop("occurred_precision")))
    assert response.status_code == 201
    assert stored_report(app).occurred_precision == "unknown"


@pytest.mark.parametrize(
    "contact",
    [
        pytest.param({"name": "Ana", "phone": "+44 20 7946 0000"}, id="no-consent-field"),
        pytest.param(
            {"name": "Ana", "email": "ana@example.org", "consent_to_contact": False},
            id="consent-false",
        ),
    ],
)
def test_contact_without_consent_is_not_stored(client, app, contact):
    response = submit(client, mutated(put("contact", contact)))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert stored_report(app).contact_encrypted is None


def test_contact_with_consent_is_stored_encrypted(client, app):
    contact = {"name": "Ana", "email": "ana@example.org", "consent_to_contact": True}
    response = submit(client, mutated(put("contact", contact)))
    assert response.status_code == 201
    encrypted = stored_report(app).contact_encrypted
    assert encrypted is not None and b"ana@example.org" not in encrypted


# --- POST /api/v1/reports: bodies that are not JSON, or not acceptable JSON -----------------

DEEP_ARRAY = '{"description": "x", "place": "y", "people": ' + "[" * 100_000 + "}"
NESTED_PEOPLE = json.dumps({**VALID_REPORT, "people": nested_objects(40)})

MALFORMED = [
    pytest.param(b'{"description": ', id="truncated"),
    pytest.param(b"", id="empty"),
    pytest.param(b'{"description": "x", "place": "y"} trailing', id="trailing-garbage"),
    pytest.param(b"{'description': 'x', 'place': 'y'}", id="single-quotes"),
    pytest.param(b'{"description": "\xff\xfe", "place": "x"}', id="invalid-utf8"),
    pytest.param('{"description": "é", "place": "x"}'.encode("latin-1"), id="latin-1"),
    pytest.param(
        b'{"description":"x","place":"y","location":{"lat":NaN,"lon":0}}', id="nan"
    ),
    pytest.param(
        b'{"description":"x","place":"y","location":{"lat":Infinity,"lon":0}}', id="infinity"
    ),
    pytest.param(
        b'{"description":"x","place":"y","location":{"lat":-Infinity,"lon":0}}',
        id="minus-infinity",
    ),
    pytest.param(DEEP_ARRAY.encode(), id="100000-nested-arrays"),
    # 40 levels of objects: the parser refuses anything deeper than 32 before the schema runs.
    pytest.param(NESTED_PEOPLE.encode(), id="40-nested-objects"),
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_report_body_is_400(client, app, redis_conn, raw):
    response = client.post(
        REPORTS, data=raw, content_type="application/json",
        headers={"Idempotency-Key": new_key()},
    )
    assert_problem(response, 400)
    assert_nothing_stored(app, redis_conn)


VALID_JSON = json.dumps(VALID_REPORT)

UNSUPPORTED = [
    pytest.param({"data": VALID_JSON, "content_type": "text/plain"}, id="text-plain"),
    pytest.param(
        {"data": {"description": "x", "place": "y"}, "content_type": "multipart/form-data"},
        id="multipart",
    ),
    pytest.param(
        {"data": "description=x&place=y", "content_type": "application/x-www-form-urlencoded"},
        id="form-urlencoded",
    ),
    pytest.param({"data": VALID_JSON}, id="no-content-type"),
    pytest.param({"data": VALID_JSON, "content_type": "application/xml"}, id="xml"),
]


@pytest.mark.parametrize("request_kwargs", UNSUPPORTED)
def test_report_not_sent_as_json_is_415(client, app, redis_conn, request_kwargs):
    response = client.post(REPORTS, headers={"Idempotency-Key": new_key()}, **request_kwargs)
    assert_problem(response, 415)
    assert_nothing_stored(app, redis_conn)


def test_no_content_type_header_is_really_absent(client):
    # The "no-content-type" case above only proves something if the header is not sent.
    response = client.post(REPORTS, data=VALID_JSON, headers={"Idempotency-Key": new_key()})
    assert response.request.headers.get("Content-Type") is None


def test_report_over_1_mib_is_413(client, app, redis_conn):
    body = {**VALID_REPORT, "description": "x" * int(1.1 * 1024 * 1024)}
    response = submit(client, body)
    assert_problem(response, 413)
    assert_nothing_stored(app, redis_conn)


def test_json_with_charset_parameter_is_accepted(client, app, redis_conn):
    response = client.post(
        REPORTS, data=VALID_JSON, content_type="application/json; charset=utf-8",
        headers={"Idempotency-Key": new_key()},
    )
    assert response.status_code == 201
    assert_stored(app, redis_conn, ONE_REPORT)


# --- Idempotency-Key --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Idempotency-Key": ""}, id="empty"),
        pytest.param({"Idempotency-Key": "not-a-uuid"}, id="not-a-uuid"),
        pytest.param({"Idempotency-Key": "12345"}, id="number"),
        pytest.param({"Idempotency-Key": str(uuid.uuid4())[:-1]}, id="uuid-one-char-short"),
    ],
)
def test_missing_or_malformed_idempotency_key_is_422(client, app, redis_conn, headers):
    response = client.post(REPORTS, json=VALID_REPORT, headers=headers)
    assert_problem(response, 422, "Idempotency-Key")
    assert_nothing_stored(app, redis_conn)


def test_same_idempotency_key_with_another_body_is_422(client, app, redis_conn):
    key = new_key()
    first = submit(client, key=key)
    assert first.status_code == 201
    other = mutated(put("description", "Something else entirely."))
    response = submit(client, other, key=key)
    assert_problem(response, 422, "Idempotency-Key")
    assert_stored(app, redis_conn, ONE_REPORT)
    assert stored_report(app).description == VALID_REPORT["description"]


def test_same_idempotency_key_with_same_body_is_one_report(client, app, redis_conn):
    key = new_key()
    first, second = submit(client, key=key), submit(client, key=key)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert_stored(app, redis_conn, ONE_REPORT)


def test_unknown_type_with_used_key_changes_nothing(client, app, redis_conn):
    # The unknown-type check runs in the service, after the database was touched: it must
    # still leave no trace.
    key = new_key()
    bad = submit(client, mutated(put("exploitation_types", ["trafficking"])), key=key)
    assert_problem(bad, 422, "exploitation_types")
    good = submit(client, key=key)
    assert good.status_code == 201, good.get_data(as_text=True)
    assert_stored(app, redis_conn, ONE_REPORT)


# --- Well-formed values the database cannot hold, and patterns that must match whole --------

UNSTORABLE = [
    pytest.param(put("description", "a\u0000b"), "description", id="nul-description"),
    pytest.param(put("place", "a\u0000b"), "place", id="nul-place"),
    pytest.param(put("people.description", "a\u0000b"), "people.description", id="nul-people"),
    pytest.param(
        put("vehicles.0.registration", "AB\u000012"), "vehicles.0.registration",
        id="nul-vehicle",
    ),
    # The version pattern ends in "$", which also matches before a final newline: 32 characters
    # and a newline pass the schema and overflow VARCHAR(32).
    pytest.param(put("app.version", "1" * 32 + "\n"), "app.version", id="version-33-chars"),
    # Stored (and committed, and queued) as 0001-12-31T10:00Z BC, which psycopg cannot read back:
    # the 500 comes after the commit, so the reporter is told it failed while it was stored.
    pytest.param(
        put("occurred_at", "0001-01-01T00:00:00+14:00"), "occurred_at", id="occurred-before-year-1"
    ),
]


@pytest.mark.parametrize("mutation, field", UNSTORABLE)
def test_value_the_database_cannot_hold_is_422(client, app, redis_conn, mutation, field):
    response = submit(client, mutated(mutation))
    assert_problem(response, 422, field)
    assert_nothing_stored(app, redis_conn)


@pytest.mark.parametrize("field", ["description", "place"])
def test_lone_surrogate_is_refused(client, app, redis_conn, field):
    raw = json.dumps({**VALID_REPORT, field: "a\ud800b"})  # ensure_ascii writes "\\ud800"
    response = client.post(
        REPORTS, data=raw, content_type="application/json",
        headers={"Idempotency-Key": new_key()},
    )
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert_problem(response, response.status_code)
    assert_nothing_stored(app, redis_conn)


@pytest.mark.parametrize(
    "mutation, field",
    [
        pytest.param(put("language", "en\n"), "language", id="language"),
        pytest.param(put("app.version", "4.1.0\n"), "app.version", id="app-version"),
        pytest.param(
            put("contact", {"phone": "+44 20 7946 0000\n", "consent_to_contact": True}),
            "contact.phone", id="contact-phone",
        ),
    ],
)
def test_trailing_newline_is_refused(client, app, redis_conn, mutation, field):
    response = submit(client, mutated(mutation))
    assert_problem(response, 422, field)
    assert_nothing_stored(app, redis_conn)


# --- POST /api/v1/reports/{id}/messages -----------------------------------------------------


@pytest.fixture
def report(client, redis_conn):
    """A stored report: its id and receipt."""
    response = submit(client)
    assert response.status_code == 201
    created = response.get_json()
    return created["id"], created["receipt"]


def post_message(client, report_id: str, body, receipt: str | None, **kwargs):
    headers = {RECEIPT: receipt} if receipt is not None else {}
    if "data" not in kwargs:
        kwargs["json"] = body
    return client.post(f"{REPORTS}/{report_id}/messages", headers=headers, **kwargs)


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({"body": ""}, "body", id="empty"),
        pytest.param({"body": " \n\t "}, "body", id="whitespace"),
        pytest.param({"body": "m" * 5001}, "body", id="5001-chars"),
        pytest.param({}, "body", id="missing"),
        pytest.param({"body": None}, "body", id="null"),
        pytest.param({"body": 5}, "body", id="number"),
        pytest.param({"body": ["a"]}, "body", id="list"),
        pytest.param({"body": "hello", "from": "analyst"}, "from", id="unknown-field"),
        pytest.param(["hello"], "body", id="array-body"),
        pytest.param("hello", "body", id="string-body"),
    ],
)
def test_invalid_message_is_422(client, app, redis_conn, report, body, field):
    report_id, receipt = report
    response = post_message(client, report_id, body, receipt)
    assert_problem(response, 422, field)
    assert_stored(app, redis_conn, ONE_REPORT)


@pytest.mark.parametrize(
    "kwargs, status",
    [
        pytest.param({"data": b'{"body": ', "content_type": "application/json"}, 400,
                     id="malformed"),
        pytest.param({"data": b'{"body": "\xff"}', "content_type": "application/json"}, 400,
                     id="invalid-utf8"),
        pytest.param({"data": '{"body": "hi"}', "content_type": "text/plain"}, 415,
                     id="text-plain"),
        pytest.param({"data": {"body": "hi"}, "content_type": "multipart/form-data"}, 415,
                     id="multipart"),
        pytest.param({"data": json.dumps({"body": "m" * (1024 * 1024)}),
                      "content_type": "application/json"}, 413, id="over-1-mib"),
    ],
)
def test_message_not_acceptable_json(client, app, redis_conn, report, kwargs, status):
    report_id, receipt = report
    response = post_message(client, report_id, None, receipt, **kwargs)
    assert_problem(response, status)
    assert_stored(app, redis_conn, ONE_REPORT)


def test_message_of_5000_chars_is_accepted(client, app, redis_conn, report):
    report_id, receipt = report
    response = post_message(client, report_id, {"body": "m" * 5000}, receipt)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["body"] == "m" * 5000
    assert_stored(app, redis_conn, {**ONE_REPORT, "report_messages": 1})


@pytest.mark.parametrize("raw", [b'{"body": "a\\u0000b"}', b'{"body": "a\\ud800b"}'],
                         ids=["nul", "lone-surrogate"])
def test_message_the_database_cannot_hold_is_refused(client, app, redis_conn, report, raw):
    report_id, receipt = report
    response = post_message(client, report_id, None, receipt, data=raw,
                            content_type="application/json")
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert_problem(response, response.status_code)
    assert_stored(app, redis_conn, ONE_REPORT)


def _not_yours_cases(report_id: str, receipt: str) -> dict[str, tuple[str, str | None]]:
    """(report id, receipt) pairs that must all look exactly like an unknown report."""
    other = "ABCD-EFGH-JKMN-PQRS-TVWX"
    assert other != receipt
    return {
        "wrong-receipt": (report_id, other),
        "empty-receipt": (report_id, ""),
        "missing-receipt": (report_id, None),
        "unknown-id": (str(uuid.uuid4()), receipt),
        "unknown-id-no-receipt": (str(uuid.uuid4()), None),
    }


def test_message_to_a_report_not_yours_is_404_and_stores_nothing(
    client, app, redis_conn, report
):
    report_id, receipt = report
    bodies = {}
    for case, (target, presented) in _not_yours_cases(report_id, receipt).items():
        response = post_message(client, target, {"body": "more information"}, presented)
        bodies[case] = assert_problem(response, 404)
        assert "errors" not in bodies[case]
        assert_stored(app, redis_conn, ONE_REPORT)
    assert all(body == bodies["unknown-id"] for body in bodies.values()), bodies


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "00000000-0000-0000-0000-00000000000g"])
def test_message_to_a_malformed_id_is_404(client, app, redis_conn, report, bad_id):
    _, receipt = report
    response = post_message(client, bad_id, {"body": "hi"}, receipt)
    assert_problem(response, 404)
    assert_stored(app, redis_conn, ONE_REPORT)


# --- GET /api/v1/reports/{id}/status --------------------------------------------------------


def get_status(client, report_id: str, receipt: str | None):
    headers = {RECEIPT: receipt} if receipt is not None else {}
    return client.get(f"{REPORTS}/{report_id}/status", headers=headers)


def test_status_of_a_report_not_yours_is_404_like_an_unknown_id(client, report):
    report_id, receipt = report
    assert get_status(client, report_id, receipt).status_code == 200
    bodies = {}
    for case, (target, presented) in _not_yours_cases(report_id, receipt).items():
        response = get_status(client, target, presented)
        bodies[case] = assert_problem(response, 404)
        assert receipt not in response.get_data(as_text=True)
    assert all(body == bodies["unknown-id"] for body in bodies.values()), bodies


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "%00", "..%2F..%2Fmeta"])
def test_status_of_a_malformed_id_is_404(client, report, bad_id):
    _, receipt = report
    assert_problem(get_status(client, bad_id, receipt), 404)


# --- Errors outside the handlers ------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, status",
    [
        pytest.param("GET", "/api/v1/no-such-thing", 404, id="unknown-api-url"),
        pytest.param("GET", "/no-such-thing", 404, id="unknown-url"),
        pytest.param("POST", "/api/v1/reports/", 404, id="trailing-slash"),
        pytest.param("DELETE", REPORTS, 405, id="delete-reports"),
        pytest.param("GET", REPORTS, 405, id="get-reports"),
        pytest.param("PUT", f"{REPORTS}/{uuid.uuid4()}/status", 405, id="put-status"),
    ],
)
def test_routing_errors_are_problem_json(client, method, path, status):
    response = client.open(path, method=method)
    assert_problem(response, status)
    if status == 405:
        assert "Allow" in response.headers


# --- Random JSON never breaks the server ----------------------------------------------------

REPORT_FIELDS = list(VALID_REPORT) + ["contact"]
NESTED_FIELDS = [
    "lat", "lon", "accuracy_m", "source", "victims", "minors", "suspects", "registration",
    "name", "phone", "email", "consent_to_contact", "platform", "version", "body",
]
# Any character at all, NUL and lone surrogates included.
TEXT = st.text(max_size=30)
KEYS = st.one_of(st.sampled_from(REPORT_FIELDS + NESTED_FIELDS), TEXT)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    TEXT, st.sampled_from(["labour", "gps", "exact", "android", "2026-11-20T14:05:00Z"]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=6)
    ),
    max_leaves=25,
)
# The valid report with some fields replaced or added: random values that get past the
# outer checks and reach the schema's inner rules and the database.
NEAR_VALID = st.dictionaries(st.sampled_from(REPORT_FIELDS) | TEXT, JSON_VALUES, max_size=3).map(
    lambda changes: {**VALID_REPORT, **changes}
)
BODIES = st.one_of(JSON_VALUES, st.dictionaries(KEYS, JSON_VALUES, max_size=8), NEAR_VALID)


@settings(
    max_examples=50, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=BODIES)
def test_random_json_is_201_or_a_4xx_problem(client, body):
    response = client.post(
        REPORTS, data=json.dumps(body), content_type="application/json",
        headers={"Idempotency-Key": new_key()},
    )
    if response.status_code == 201:
        assert set(response.get_json()) >= {"id", "receipt", "status"}
    else:
        assert 400 <= response.status_code < 500, response.get_data(as_text=True)
        # Not assert_problem: its "no SQL" check would trip on a random key named SELECT that
        # the errors rightly echo back as a field path.
        assert response.mimetype == PROBLEM
        problem = response.get_json()
        assert problem["status"] == response.status_code and problem["title"]
        assert "Traceback" not in response.get_data(as_text=True)
