"""The fast path of request validation (api/fastload.py) gives exactly Schema.load's result for
a valid body, and gives up (so that Schema.load answers) for anything else."""

from __future__ import annotations

import copy
import json

import pytest
from marshmallow import Schema

from api import schemas
from api.fastload import GIVE_UP, _compile_schema, fast_load
from api.schemas import MessageCreateSchema, ReportCreateSchema
from stopapp.reports.services import _request_fingerprint
from tests.conftest import VALID_REPORT


def _with(**changes) -> dict:
    body = copy.deepcopy(VALID_REPORT)
    for path, value in changes.items():
        target = body
        *parents, last = path.split("__")
        for parent in parents:
            target = target[parent]
        target[last] = value
    return body


VALID = [
    VALID_REPORT,
    {"description": "Only a place.", "place": "King Street"},
    {"description": "Only a point.", "location": {"lat": 51, "lon": 0}},  # ints for floats
    _with(people={"victims": 3.0, "suspects": 0}),  # 3.0 is the integer 3
    _with(location={"lat": -90, "lon": 180.0, "accuracy_m": 0}),
    _with(description="Ünïcödé — 中文 — ✓", place=" padded "),
    _with(occurred_at="2026-11-20T14:05:00+02:00", occurred_precision="day", ongoing=True),
    _with(contact={"name": "A", "phone": "+44 20 7946 0000", "email": "a@example.org",
                   "consent_to_contact": True}),
    _with(exploitation_types=["labour", "labour", "sexual"], vehicles=[]),
    _with(app={"platform": "ios", "version": "1.2.3-beta+4"}, language="pt-BR"),
]

INVALID = [
    _with(unknown_field=1),
    _with(place=None),
    {"place": "no description"},
    _with(description="   "),
    _with(description="NUL \x00 inside"),
    _with(description="x" * 10_001),
    _with(location__lat=91),
    _with(location__lat="51.5"),
    _with(location__extra=1),
    _with(people__victims=True),
    _with(people__victims=2.5),
    _with(ongoing="yes"),
    _with(occurred_at="2999-01-01T00:00:00Z"),
    _with(occurred_at="1899-12-31T00:00:00Z"),
    _with(occurred_at="2026-11-20T14:05:00"),  # no zone
    {"description": "Neither a point nor a place."},
    _with(vehicles=[{"description": "van"}] * 21),
    _with(vehicles={"description": "not a list"}),
    _with(contact={"email": "not an address"}),
    _with(exploitation_types=[]),
    _with(exploitation_types="labour"),
    _with(language="english!"),
    _with(app={"platform": "symbian"}),
    _with(location=[51.5, -0.2]),
]


@pytest.mark.parametrize("body", VALID)
def test_a_valid_body_loads_exactly_as_schema_load_does(body):
    schema = ReportCreateSchema()
    data = json.loads(json.dumps(body))
    fast = fast_load(schema, data)
    assert fast is not GIVE_UP
    full = schema.load(json.loads(json.dumps(body)))
    assert fast == full
    # Same types too (20 and 20.0 compare equal but fingerprint differently).
    assert repr(fast) == repr(full)
    assert _request_fingerprint(fast) == _request_fingerprint(full)


@pytest.mark.parametrize("body", INVALID)
def test_anything_invalid_is_left_to_schema_load(body):
    schema = ReportCreateSchema()
    assert fast_load(schema, json.loads(json.dumps(body))) is GIVE_UP


def test_a_body_that_is_not_an_object_is_left_to_schema_load():
    assert fast_load(ReportCreateSchema(), ["a list"]) is GIVE_UP


def test_message_bodies_take_the_fast_path_too():
    schema = MessageCreateSchema()
    assert fast_load(schema, {"body": "More detail."}) == schema.load({"body": "More detail."})
    assert fast_load(schema, {"body": ""}) is GIVE_UP


def test_every_schema_compiles_or_is_left_to_marshmallow():
    for value in vars(schemas).values():
        if isinstance(value, type) and issubclass(value, Schema) and value is not Schema:
            _compile_schema(value())  # must not raise; None means "always Schema.load"


def test_the_created_answer_is_what_schema_dump_makes():
    import uuid
    from datetime import UTC, datetime, timedelta, timezone

    from api.reports import _created_schema, dump_created

    for created_at in (datetime(2026, 11, 29, 1, 2, 3, 456789, tzinfo=UTC),
                       datetime(2026, 1, 1, 23, 59, 59, tzinfo=timezone(timedelta(hours=5)))):
        values = {"id": uuid.uuid4(), "receipt": "ABCD-EFGH-JKMN-PQRS-TVWX",
                  "status": "received", "created_at": created_at, "max_photos": 5}
        fast, full = dump_created(values), _created_schema.dump(values)
        assert fast == full
        assert list(fast) == list(full)
        assert repr(fast) == repr(full)
