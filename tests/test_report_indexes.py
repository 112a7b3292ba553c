"""The indexes of `reports` that the queue, the triage job and the reconciler rely on.

A new report writes every total index of the table, so the indexes only analysts use are
partial where their filters allow it (migration i14_partial_gin). These tests pin what each
query needs: they EXPLAIN the real statements on a few thousand reports in mixed states.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from stopapp.accounts.models import User
from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.reports import services as reports
from stopapp.reports.services import reports_awaiting_triage
from stopapp.review import queue
from stopapp.review.enrichment import link_possible_duplicates
from tests.triage_helpers import make_staff
from workers import dispatcher

ROWS = 3000
RARE_TAG = "control:isolation"
RARE_AREA = "E09000013"

# Three thousand reports over a month: a received one in every 50; a tag on one in three (the
# rare one on one in a hundred), areas on half of those past received (the rare area on one in
# a hundred), a point around London on each.
_LOAD = text(f"""
INSERT INTO reports (id, idempotency_key_hash, request_hash, receipt_hash, description,
                     exploitation_types, location, place, occurred_precision, ongoing, state,
                     priority, tags, area_codes, version, created_at)
SELECT gen_random_uuid(), sha256(('key' || i)::bytea), sha256('r'::bytea), sha256('t'::bytea),
       'Workers sleep at the car wash number ' || i, ARRAY['labour'],
       ST_SetSRID(ST_MakePoint(-0.2 + (i % 97) / 1000.0, 51.5 + (i % 89) / 1000.0), 4326),
       'King Street', 'unknown', false, state, i % 100,
       CASE WHEN i % 100 = 0 THEN ARRAY['{RARE_TAG}']
            WHEN i % 3 = 0 THEN ARRAY['sector:car_wash'] ELSE '{{}}' END,
       CASE WHEN state = 'received' OR i % 2 = 0 THEN '{{}}'
            WHEN i % 100 = 1 THEN ARRAY['{RARE_AREA}'] ELSE ARRAY['E09000020'] END,
       1, now() - make_interval(mins => i * 15)
FROM generate_series(1, {ROWS}) AS i,
     LATERAL (SELECT (ARRAY['new', 'in_review', 'actioned', 'closed', 'dismissed'])[1 + i % 5]
                     AS fallback) f,
     LATERAL (SELECT CASE WHEN i % 50 = 7 THEN 'received' ELSE f.fallback END AS state) s
""")


@pytest.fixture
def loaded(app):
    """(app, analyst) with ROWS reports loaded and analyzed (rolled back after the test)."""
    user_id, _ = make_staff(app, "analyst")
    with app.app_context():
        db.session.execute(_LOAD)
        db.session.execute(text("ANALYZE reports"))
        yield app, db.session.get(User, user_id)


def plans(run) -> list[tuple[set[str], bool]]:
    """For each statement `run()` sends: the indexes in its plan, and whether `reports` is read
    sequentially."""
    sent = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    return [plan_of(statement, parameters) for statement, parameters in sent]


def plan_of(statement: str, parameters,  # noqa: ANN001
            relation: str = "reports") -> tuple[set[str], bool]:
    """The indexes in the plan of `statement`, and whether it reads `relation` sequentially."""
    plan = db.session.connection().exec_driver_sql(
        "EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
    names, sequential, nodes = set(), False, [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        names.update([node["Index Name"]] if "Index Name" in node else [])
        sequential |= (node["Node Type"] == "Seq Scan"
                       and node.get("Relation Name") == relation)
        nodes.extend(node.get("Plans", []))
    return names, sequential


def queue_plans(actor: User, **filters) -> list[tuple[set[str], bool]]:
    """The plans of a queue page and of its counts per state."""
    query = queue.QueueQuery(counts=True, **filters)
    return plans(lambda: queue.list_reports(actor, query))


ALL_STATES = ("received", "new", "in_review", "actioned", "closed", "dismissed", "duplicate")


@pytest.mark.parametrize("states", [queue.DEFAULT_STATES, ("received",), ("closed",), ALL_STATES])
def test_a_tag_filter_uses_the_partial_tag_index(loaded, states):
    _, actor = loaded
    page, counts = queue_plans(actor, states=states, tags=(RARE_TAG,))
    for names, sequential in (page, counts):
        assert "ix_reports_tags" in names and not sequential, (names, sequential)


@pytest.mark.parametrize("states", [queue.DEFAULT_STATES, ("received",), ("closed",), ALL_STATES])
def test_an_area_filter_uses_the_partial_area_index(loaded, states):
    _, actor = loaded
    page, counts = queue_plans(actor, states=states, area=RARE_AREA)
    for names, sequential in (page, counts):
        assert "ix_reports_area_codes" in names and not sequential, (names, sequential)


def test_the_tag_and_area_filters_still_find_what_they_found(loaded):
    _, actor = loaded
    everything = queue.QueueQuery(states=ALL_STATES, limit=queue.MAX_LIMIT, counts=True)
    tagged = queue.list_reports(actor, dataclasses.replace(everything, tags=(RARE_TAG,)))
    assert len(tagged.items) == ROWS // 100
    assert sum(tagged.counts.values()) == ROWS // 100
    in_area = queue.list_reports(actor, dataclasses.replace(everything, area=RARE_AREA))
    expected = db.session.scalar(text(
        "SELECT count(*) FROM reports WHERE :area = ANY(area_codes)"), {"area": RARE_AREA})
    assert expected > 0
    assert sum(in_area.counts.values()) == expected == len(in_area.items)


def test_a_new_report_writes_neither_partial_index(app):
    """Their predicates leave out empty lists, which every new report has."""
    with app.app_context(), unit_of_work():
        predicates = dict(db.session.execute(text(
            "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'reports'::regclass"
        )).all())
    assert predicates["ix_reports_tags"] == "(tags <> '{}'::character varying[])"
    assert predicates["ix_reports_area_codes"] == "(area_codes <> '{}'::character varying[])"
    # Unused: the queue's priority order is the negated priority (ix_reports_state_priority).
    assert "ix_reports_queue" not in predicates
    # What the triage job and the reconciler read stays total: duplicates are looked for among
    # reports still `received` too, and the reconciler finds `received` ones by age.
    for total in ("idx_reports_location", "ix_reports_state_created_at",
                  "ix_reports_state_priority", "ix_reports_search_vector",
                  "ix_reports_location_geometry", "ix_reports_assignee_id"):
        assert predicates[total] is None, total


def test_intake_finds_a_retry_through_the_key_index_in_a_plan_made_on_an_empty_table(app):
    """psycopg prepares the intake statement, and PostgreSQL soon keeps one generic plan for
    it until the table's statistics change; a plan made on a fresh, empty table must not read
    the whole table for every submission later. (A combined INSERT of several submissions
    whose key lookup was a join got a hash join over a sequential scan there, and doubled
    PostgreSQL's CPU per report in bench/intake.py until the next ANALYZE.)"""
    numbers: dict[str, int] = {}
    statement = re.sub(r"%\((\w+)\)s",
                       lambda m: f"${numbers.setdefault(m.group(1), len(numbers) + 1)}",
                       re.sub(r"\breports\b", "empty_reports", reports._SUBMIT))
    with app.app_context(), unit_of_work():
        connection = db.session.connection()
        connection.exec_driver_sql(
            "CREATE TEMP TABLE empty_reports (LIKE reports INCLUDING ALL) ON COMMIT DROP")
        connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        connection.exec_driver_sql("PREPARE submit_generic AS " + statement)
        try:
            types = connection.exec_driver_sql(
                "SELECT unnest(parameter_types)::text FROM pg_prepared_statements "
                "WHERE name = 'submit_generic'").scalars().all()
            names, sequential = plan_of(
                "EXECUTE submit_generic(" + ", ".join(f"NULL::{kind}" for kind in types) + ")",
                None, relation="empty_reports")
        finally:
            connection.exec_driver_sql("DEALLOCATE submit_generic")
    assert "empty_reports_idempotency_key_hash_key" in names, names
    assert not sequential


def test_the_reconciler_finds_received_reports_by_age_through_an_index(loaded):
    [(names, sequential)] = plans(lambda: reports_awaiting_triage(timedelta(minutes=1)))
    # Either index that leads with the state; both stay total.
    assert names & {"ix_reports_state_created_at", "ix_reports_state_priority"}, names
    assert not sequential


def test_the_dispatchers_poll_reads_the_latest_received_reports_through_an_index(loaded):
    horizon = db.session.scalar(text("SELECT now() - interval '2 seconds'"))
    names, sequential = plan_of(dispatcher._NEW_ROWS, {"horizon": horizon})
    assert "ix_reports_state_created_at" in names and not sequential, names


def test_the_duplicate_search_finds_twins_through_the_total_location_index(loaded):
    received = db.session.scalar(text(
        "SELECT id FROM reports WHERE state = 'received' ORDER BY created_at LIMIT 1"))
    [(names, sequential)] = plans(lambda: link_possible_duplicates(received))
    assert "idx_reports_location" in names and not sequential


def test_the_priority_order_of_one_state_uses_the_state_priority_index(loaded):
    _, actor = loaded
    (names, sequential), _ = queue_plans(actor, states=("closed",), sort="priority")
    assert "ix_reports_state_priority" in names and not sequential, names
