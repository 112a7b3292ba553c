"""The triage job: areas on the real London boundaries, the priority rule case by case, possible
duplicates (text twins, photo twins through the real photo pipeline), the failure path, and one
run through a real RQ worker process.
"""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from geoalchemy2.elements import WKTElement
from rq import Queue
from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty
from sqlalchemy import event, select, text, update

from stopapp.areas import services as areas
from stopapp.audit.models import AuditEvent
from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.media import services as media
from stopapp.media.phash import perceptual_hash
from stopapp.models import Photo, Report, ReportLink
from stopapp.reports.services import TRIAGE_MAX_ATTEMPTS
from stopapp.review import enrichment
from stopapp.review.enrichment import BASE_POINTS, POINTS, compute_priority
from tests.conftest import ROOT, VALID_REPORT, submit
from tests.test_areas import GEO, HF, KC, border_points
from tests.test_photo_jobs import accept, process
from tests.test_photos_api import Reported, media_root
from tests.test_reliability import run_dispatcher_burst, run_worker_burst
from workers import jobs
from workers.context import JobDatabaseError

CAR_WASH = "Workers sleep in the back of the car wash and are driven away at night in a white van."
CAR_WASH_AGAIN = ("Men are sleeping at the back of the car wash and get driven away at night in a "
                  "white van.")
MAID = "A woman works as a maid in the flat upstairs and is never allowed to go out."
KING_STREET = (-0.2240, 51.4927)  # in Hammersmith and Fulham
# About this many metres north of a point, per degree of latitude.
M_PER_DEG_LAT = 111_200


def north(position: tuple[float, float], metres: float) -> tuple[float, float]:
    return position[0], position[1] + metres / M_PER_DEG_LAT


def report_at(client, position: tuple[float, float] | None, description: str = CAR_WASH,
              **fields) -> Reported:
    body = {**VALID_REPORT, "description": description, **fields}
    if position is None:
        body.pop("location")
    else:
        body["location"] = {**VALID_REPORT["location"], "lon": position[0], "lat": position[1]}
    response = submit(client, body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return Reported(response.get_json()["id"], response.get_json()["receipt"])


def triage(app, report: Reported) -> bool:
    with app.app_context():
        return jobs.triage_report(report.id)


def row(app, report: Reported) -> Report:
    with app.app_context():
        db.session.expire_all()
        found = db.session.get(Report, uuid.UUID(report.id))
        db.session.expunge(found)
        return found


def links(app) -> dict[tuple[str, str], ReportLink]:
    with app.app_context():
        db.session.expire_all()
        found = db.session.scalars(select(ReportLink)).all()
        for link in found:
            db.session.expunge(link)
        return {(str(link.report_id), str(link.other_id)): link for link in found}


def events(app, report: Reported) -> list[AuditEvent]:
    with app.app_context():
        found = db.session.scalars(
            select(AuditEvent).where(AuditEvent.report_id == uuid.UUID(report.id),
                                     AuditEvent.action == "triage.enriched")
        ).all()
        for e in found:
            db.session.expunge(e)
        return found


def make_older(app, report: Reported, days: float) -> None:
    with app.app_context(), unit_of_work():
        db.session.execute(update(Report).where(Report.id == uuid.UUID(report.id)).values(
            created_at=Report.created_at - timedelta(days=days)))


def import_london(app) -> None:
    with app.app_context(), unit_of_work(), GEO.open("rb") as source:
        areas.import_areas(None, source, code_property="LAD13CD", name_property="LAD13NM")


@pytest.fixture
def london(app):
    import_london(app)
    return app


# --------------------------------------------------------------------------------------------
# Areas, state and audit


def test_report_gets_the_borough_of_its_point_and_enters_the_queue(london, client):
    report = report_at(client, KING_STREET)
    assert triage(london, report) is True
    stored = row(london, report)
    assert (stored.state, stored.area_codes, stored.enrichment_failed) == ("new", [HF], False)
    assert stored.triage_attempts == 1
    [enriched] = events(london, report)
    assert enriched.actor_id is None
    assert enriched.detail["areas"] == [HF]
    assert enriched.detail["priority"] == stored.priority
    assert CAR_WASH not in str(enriched.detail)


def test_reports_three_metres_either_side_of_the_border_get_one_borough_each(london, client):
    sides = border_points(london, HF, KC, 0.5)
    positions = []
    with london.app_context():
        for wkt in (sides.left_wkt, sides.right_wkt):
            positions.append(db.session.execute(text(
                "SELECT ST_X(g), ST_Y(g) FROM ST_GeomFromText(:wkt) g"), {"wkt": wkt}).one())
    left, right = (report_at(client, tuple(p)) for p in positions)
    triage(london, left)
    triage(london, right)
    assert sorted([row(london, left).area_codes, row(london, right).area_codes]) == [[HF], [KC]]


def test_report_outside_every_area_or_without_a_point_has_no_area(london, client):
    greenwich = report_at(client, (-0.0077, 51.4826))
    place_only = report_at(client, None, place="Behind the station")
    triage(london, greenwich)
    triage(london, place_only)
    assert row(london, greenwich).area_codes == []
    assert (row(london, place_only).state, row(london, place_only).area_codes) == ("new", [])


def test_running_the_job_twice_does_no_harm(london, client):
    first = report_at(client, KING_STREET)
    second = report_at(client, north(KING_STREET, 80), CAR_WASH_AGAIN)
    triage(london, first)
    assert triage(london, second) is True
    before = (row(london, second).version, set(links(london)))
    assert triage(london, second) is False
    assert (row(london, second).version, set(links(london))) == before
    assert len(events(london, second)) == 1
    assert row(london, second).triage_attempts == 1


# --------------------------------------------------------------------------------------------
# The priority rule, case by case (the README's table)

CREATED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def report_with(**fields) -> Report:
    defaults = {
        "description": "x", "exploitation_types": ["labour"], "people": None, "ongoing": False,
        "occurred_at": None, "occurred_precision": "unknown", "location": None,
        "location_accuracy_m": None, "location_source": None, "place": "somewhere",
        "created_at": CREATED,
    }
    return Report(**{**defaults, **fields})


POINT = WKTElement("POINT(-0.2240 51.4927)", srid=4326)


def located(source: str | None, accuracy_m: float | None) -> dict:
    return {"location": POINT, "location_source": source, "location_accuracy_m": accuracy_m}


def occurred(hours_before: float, precision: str) -> dict:
    return {"occurred_at": CREATED - timedelta(hours=hours_before),
            "occurred_precision": precision}


PRIORITY_CASES = {
    "nothing": ({}, 0, 0, 10, []),
    "child exploitation": ({"exploitation_types": ["child"]}, 0, 0, 45, ["minors"]),
    "minors among the people": ({"people": {"minors": True}}, 0, 0, 45, ["minors"]),
    "no minors": ({"people": {"minors": False, "victims": 3}}, 0, 0, 10, []),
    "ongoing": ({"ongoing": True}, 0, 0, 30, ["ongoing"]),
    "71 hours ago, exact": (occurred(71, "exact"), 0, 0, 25, ["recent_72h"]),
    "71 hours ago, day": (occurred(71, "day"), 0, 0, 25, ["recent_72h"]),
    "71 hours ago, week": (occurred(71, "week"), 0, 0, 15, ["recent_14d"]),
    "73 hours ago, exact": (occurred(73, "exact"), 0, 0, 15, ["recent_14d"]),
    "13 days ago, week": (occurred(13 * 24, "week"), 0, 0, 15, ["recent_14d"]),
    "15 days ago, exact": (occurred(15 * 24, "exact"), 0, 0, 10, []),
    "2 days ago, month": (occurred(48, "month"), 0, 0, 10, []),
    "2 days ago, unknown": (occurred(48, "unknown"), 0, 0, 10, []),
    "one photo": ({}, 1, 0, 15, ["photos"]),
    "one other report": ({}, 0, 1, 20, ["corroborated"]),
    "two other reports": ({}, 0, 2, 20, ["corroborated"]),
    "three other reports": ({}, 0, 3, 30, ["corroborated_3plus"]),
    "gps within 100 m": (located("gps", 100), 0, 0, 20, ["precise_location"]),
    "map pin within 30 m": (located("map", 30), 0, 0, 20, ["precise_location"]),
    "gps at 101 m": (located("gps", 101), 0, 0, 15, ["approximate_location"]),
    "geocoded text within 50 m": (located("text", 50), 0, 0, 15, ["approximate_location"]),
    "gps of unknown accuracy": (located("gps", None), 0, 0, 15, ["approximate_location"]),
    "text of unknown accuracy": (located("text", None), 0, 0, 10, []),
    "gps at 1001 m": (located("gps", 1001), 0, 0, 10, []),
    "everything, capped at 100": (
        {"exploitation_types": ["child"], "ongoing": True, **occurred(1, "exact"),
         **located("gps", 10)}, 2, 5, 100,
        ["minors", "ongoing", "recent_72h", "photos", "corroborated_3plus", "precise_location"],
    ),
}


@pytest.mark.parametrize(("fields", "photos", "others", "priority", "reasons"),
                         list(PRIORITY_CASES.values()), ids=list(PRIORITY_CASES))
def test_priority_rule(fields, photos, others, priority, reasons):
    result = compute_priority(report_with(**fields), photo_count=photos, link_count=others)
    assert (result.value, result.reasons) == (priority, reasons)


def test_readme_table_gives_the_points_the_code_uses():
    readme = (ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| `(\w+)` \| \+(\d+) \|", readme, re.MULTILINE))
    assert {code: int(points) for code, points in table.items()} == POINTS
    assert re.search(rf"^\| \(every report\) \| {BASE_POINTS} \|", readme, re.MULTILINE)


# --------------------------------------------------------------------------------------------
# Possible duplicates


def test_text_twins_are_linked_both_ways_and_the_earlier_gains_corroboration(london, client):
    earlier = report_at(client, KING_STREET)
    triage(london, earlier)
    alone = row(london, earlier)
    assert "corroborated" not in alone.priority_reasons
    later = report_at(client, north(KING_STREET, 100), CAR_WASH_AGAIN)
    triage(london, later)
    found = links(london)
    assert set(found) == {(earlier.id, later.id), (later.id, earlier.id)}
    there, back = found[(earlier.id, later.id)], found[(later.id, earlier.id)]
    assert there.distance_m == pytest.approx(100, abs=2) == back.distance_m
    assert there.text_similarity > 0.7 and there.photo_match is False
    assert there.hours_apart < 1
    # The earlier report was updated too: it is corroborated now, and ranks higher.
    updated = row(london, earlier)
    assert "corroborated" in updated.priority_reasons
    assert updated.priority == alone.priority + POINTS["corroborated"]
    assert updated.version == alone.version + 1
    assert "corroborated" in row(london, later).priority_reasons


def test_third_twin_makes_both_earlier_ones_corroborated_by_several(london, client):
    reports = [report_at(client, north(KING_STREET, 30 * n), CAR_WASH) for n in range(4)]
    for report in reports:
        triage(london, report)
    assert len(links(london)) == 12  # every pair, both ways
    for report in reports:
        assert "corroborated_3plus" in row(london, report).priority_reasons


def test_links_are_counted_per_report_when_a_hot_spot_has_many(london, client):
    # Five twins at one place (four links each), then a pair 2 km away: the pair's priority
    # counts its own single link, not the hot spot's.
    for n in range(5):
        triage(london, report_at(client, north(KING_STREET, 20 * n), CAR_WASH))
    pair = [report_at(client, north(KING_STREET, 2000 + 30 * n), MAID) for n in range(2)]
    for report in pair:
        triage(london, report)
    for report in pair:
        reasons = row(london, report).priority_reasons
        assert "corroborated" in reasons and "corroborated_3plus" not in reasons


def test_an_older_report_triaged_after_its_newer_twin_links_to_it(london, client):
    # The older one committed (or its job ran) late: the newer twin is triaged already.
    newer = report_at(client, north(KING_STREET, 20))
    triage(london, newer)
    older = report_at(client, KING_STREET)
    make_older(london, older, 0.01)
    triage(london, older)
    assert set(links(london)) == {(older.id, newer.id), (newer.id, older.id)}
    assert "corroborated" in row(london, newer).priority_reasons


def test_the_link_count_s_limit_is_part_of_the_statement_not_a_parameter(london):
    # psycopg prepares repeated statements; in that generic plan an unknown LIMIT made
    # PostgreSQL read every link of every twin (a bitmap scan) to keep four.
    with london.app_context():
        sql = str(select(enrichment._link_count(4)).compile(db.engine))  # noqa: SLF001
    assert "LIMIT 4" in sql


def test_twins_triaged_at_the_same_moment_link_both_ways_without_deadlock(committed_app):
    client = committed_app.test_client()
    twins = [report_at(client, north(KING_STREET, 40 * n), CAR_WASH) for n in range(3)]
    barrier = threading.Barrier(len(twins))
    outcomes = []

    def run(report: Reported) -> None:
        with committed_app.app_context():
            barrier.wait()
            try:
                outcomes.append(jobs.triage_report(report.id))
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(twin,)) for twin in twins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes == [True, True, True]
    assert len(links(committed_app)) == 6  # every pair, both ways
    for twin in twins:
        stored = row(committed_app, twin)
        assert stored.state == "new" and "corroborated" in stored.priority_reasons


def test_same_text_far_away_is_not_linked(london, client):
    triage(london, report_at(client, KING_STREET))
    triage(london, report_at(client, north(KING_STREET, 300)))
    assert links(london) == {}


@pytest.mark.parametrize(("days_before", "linked"), [(13, True), (15, False)])
def test_same_text_nearby_is_linked_only_within_the_time_window(london, client, days_before,
                                                                 linked):
    old = report_at(client, KING_STREET)
    make_older(london, old, days_before)
    triage(london, old)
    triage(london, report_at(client, north(KING_STREET, 20)))
    assert bool(links(london)) is linked


def test_different_text_nearby_without_photos_is_not_linked(london, client):
    triage(london, report_at(client, KING_STREET))
    triage(london, report_at(client, north(KING_STREET, 20), MAID))
    assert links(london) == {}


def test_the_duplicate_search_is_one_sql_statement(london, client):
    for n in range(5):
        triage(london, report_at(client, north(KING_STREET, 10 * n)))
    newest = report_at(client, north(KING_STREET, 60))
    statements = []
    with london.app_context():
        def count(_conn, _cursor, statement, *_args):
            if not statement.startswith(("SAVEPOINT", "RELEASE")):  # the test's own nesting
                statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            twins = enrichment.link_possible_duplicates(uuid.UUID(newest.id))
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert len(twins) == 5
    assert len(statements) == 1


def test_links_stored_alike_are_not_written_again(london, client):
    # Both twins' jobs compute the pair; where the jobs run behind the reports (a hot spot)
    # the second finds the links stored with the same figures and leaves them (same tuple).
    earlier = report_at(client, KING_STREET)
    later = report_at(client, north(KING_STREET, 100), CAR_WASH_AGAIN)
    triage(london, earlier)
    triage(london, later)
    where = text("SELECT report_id, other_id, ctid::text FROM report_links")
    with london.app_context():
        stored = set(db.session.execute(where).all())
        assert enrichment.link_possible_duplicates(uuid.UUID(earlier.id)) == [
            uuid.UUID(later.id)]
        assert set(db.session.execute(where).all()) == stored
    assert len(stored) == 2


def test_photo_twins_found_when_the_photos_become_ready(london, client, redis_conn):
    # Unrelated words, the same picture: one phone stored it upright, the other turned (EXIF
    # orientation 6); both go through the real pipeline, which turns it upright.
    first = report_at(client, KING_STREET)
    second = report_at(client, north(KING_STREET, 50), MAID)
    triage(london, first)
    triage(london, second)
    assert links(london) == {}
    _, first_photo = accept(client, "orientation_1.jpg", first)
    _, second_photo = accept(client, "orientation_6.jpg", second)
    process(london, first_photo)
    process(london, second_photo)
    with london.app_context():
        stored = db.session.scalars(select(Photo).order_by(Photo.created_at)).all()
        hashes = [p.phash for p in stored]
        # Stored keyed: the plain pHash of the display copy (which anyone holding the original
        # can rebuild) is not what the database holds.
        plain = []
        for p in stored:
            with media.storage().open(p.display_key) as display:
                plain.append(perceptual_hash(display.read()))
    assert None not in hashes and len(hashes) == 2
    assert not set(hashes) & set(plain)
    assert set(Queue("triage", connection=redis_conn).job_ids) >= {
        f"photo-matches-{first.id}", f"photo-matches-{second.id}"}
    with london.app_context():
        assert jobs.recheck_photo_matches(second.id) == 1
        assert jobs.recheck_photo_matches(second.id) == 1  # again: same links, no harm
    found = links(london)
    assert set(found) == {(first.id, second.id), (second.id, first.id)}
    assert found[(first.id, second.id)].photo_match is True
    assert found[(first.id, second.id)].text_similarity < 0.3
    for report in (first, second):
        assert {"photos", "corroborated"} <= set(row(london, report).priority_reasons)


def test_photos_that_do_not_look_alike_link_nothing(london, client):
    first = report_at(client, KING_STREET)
    second = report_at(client, north(KING_STREET, 50), MAID)
    triage(london, first)
    triage(london, second)
    for report, name in ((first, "iphone6_gps.jpg"), (second, "nikon_d70s_gps_serial_iptc.jpg")):
        process(london, accept(client, name, report)[1])
    with london.app_context():
        assert jobs.recheck_photo_matches(second.id) == 0
    assert links(london) == {}
    assert "photos" in row(london, second).priority_reasons


def test_photo_ready_before_triage_is_matched_by_the_triage_job(london, client):
    first = report_at(client, KING_STREET)
    triage(london, first)
    process(london, accept(client, "orientation_3.jpg", first)[1])
    second = report_at(client, north(KING_STREET, 50), MAID)
    process(london, accept(client, "orientation_8.jpg", second)[1])
    with london.app_context():
        assert jobs.recheck_photo_matches(second.id) == 0  # still `received`: left to triage
    triage(london, second)
    assert links(london)[(second.id, first.id)].photo_match is True


# --------------------------------------------------------------------------------------------
# Failure


@pytest.fixture
def impatient_app(make_app):
    """An app whose triage job gives up on a lock after 200 ms (instead of 5 s)."""
    return make_app(TRIAGE_LOCK_TIMEOUT_MS=200)


def test_enrichment_that_keeps_failing_reaches_the_queue_flagged(impatient_app):
    # A real fault, no mock: another transaction holds an exclusive lock on the areas table
    # (a migration, say), so every attempt times out waiting for it.
    report = report_at(impatient_app.test_client(), KING_STREET)
    with impatient_app.app_context():
        locker = db.engine.connect()
        locker.execute(text("LOCK TABLE areas IN ACCESS EXCLUSIVE MODE"))
        try:
            for attempt in range(1, TRIAGE_MAX_ATTEMPTS):
                with pytest.raises(JobDatabaseError, match="LockNotAvailable"):
                    jobs.triage_report(report.id)  # raised for RQ to retry
                stored = row(impatient_app, report)
                assert (stored.state, stored.triage_attempts) == ("received", attempt)
            assert jobs.triage_report(report.id) is True
        finally:
            locker.rollback()
            locker.close()
    stored = row(impatient_app, report)
    assert (stored.state, stored.enrichment_failed) == ("new", True)
    assert stored.triage_attempts == TRIAGE_MAX_ATTEMPTS
    # Ranked by its own fields all the same.
    assert "precise_location" in stored.priority_reasons
    assert stored.priority == compute_priority(stored, photo_count=0, link_count=0).value
    [flagged] = events(impatient_app, report)
    assert flagged.detail["enrichment_failed"] is True
    assert flagged.detail["error"] == "LockNotAvailable"
    assert triage(impatient_app, report) is False  # and it stays as it is


def test_a_batch_goes_on_past_a_report_that_fails_and_is_run_again_for_it(impatient_app):
    # A real fault on one report only: another transaction holds its row, so its attempt
    # times out waiting for the lock while the rest of the batch is triaged.
    client = impatient_app.test_client()
    batch = [report_at(client, north(KING_STREET, 1000 * i), MAID) for i in range(3)]
    stuck = batch[1]
    with impatient_app.app_context():
        locker = db.engine.connect()
        locker.execute(text("SELECT 1 FROM reports WHERE id = :id FOR UPDATE"), {"id": stuck.id})
        try:
            with pytest.raises(jobs.TriageRetry, match="1 of 3"):
                jobs.triage_reports([r.id for r in batch])
        finally:
            locker.rollback()
            locker.close()
    assert [row(impatient_app, r).state for r in batch] == ["new", "received", "new"]
    with impatient_app.app_context():
        assert jobs.triage_reports([r.id for r in batch]) == 1  # RQ's retry: only the one left
        assert jobs.triage_reports([r.id for r in batch]) == 0
    assert [row(impatient_app, r).triage_attempts for r in batch] == [1, 1, 1]
    assert {row(impatient_app, r).state for r in batch} == {"new"}


def test_a_batch_stops_at_its_job_timeout(make_app):
    # RQ's own timeout (a real SIGALRM, as in a worker) while a report waits for its row's
    # lock (up to 5 s): the batch must not swallow it and go on past its time. Raised inside
    # the query, it leaves as the failed rollback's database error, as a lone job's would.
    patient_app = make_app()
    client = patient_app.test_client()
    batch = [report_at(client, north(KING_STREET, 1000 * i), MAID) for i in range(3)]
    with patient_app.app_context():
        locker = db.engine.connect()
        locker.execute(text("SELECT 1 FROM reports WHERE id = :id FOR UPDATE"),
                       {"id": batch[1].id})
        try:
            with pytest.raises((JobTimeoutException, JobDatabaseError)), \
                    UnixSignalDeathPenalty(1, JobTimeoutException):
                jobs.triage_reports([r.id for r in batch])
        finally:
            locker.rollback()
            locker.close()
    assert [row(patient_app, r).state for r in batch] == ["new", "received", "received"]


def test_job_queued_again_past_the_limit_flags_the_report(app, client):
    report = report_at(client, KING_STREET)
    with app.app_context(), unit_of_work():
        db.session.execute(update(Report).where(Report.id == uuid.UUID(report.id))
                           .values(triage_attempts=TRIAGE_MAX_ATTEMPTS))
    assert triage(app, report) is True
    stored = row(app, report)
    assert (stored.state, stored.enrichment_failed) == ("new", True)
    assert events(app, report)[0].detail["error"] == "RuntimeError"


def out_of_attempts(app, report: Reported, last_attempt_minutes_ago: float) -> None:
    """As if the report's last attempt had killed its worker that long ago."""
    with app.app_context(), unit_of_work():
        db.session.execute(update(Report).where(Report.id == uuid.UUID(report.id)).values(
            triage_attempts=TRIAGE_MAX_ATTEMPTS,
            created_at=Report.created_at - timedelta(minutes=30),
            updated_at=Report.updated_at - timedelta(minutes=last_attempt_minutes_ago)))


def test_reconciler_flags_a_report_whose_last_attempt_died(committed_app, redis_conn):
    report = report_at(committed_app.test_client(), KING_STREET)
    redis_conn.flushdb()
    out_of_attempts(committed_app, report, last_attempt_minutes_ago=10)
    with committed_app.app_context():
        assert jobs.reconcile() == 0  # flagged, not queued again
    stored = row(committed_app, report)
    assert (stored.state, stored.enrichment_failed) == ("new", True)
    assert events(committed_app, report)[0].detail["error"] == "attempts_exhausted"
    assert Queue("triage", connection=redis_conn).job_ids == []


def test_reconciler_leaves_a_last_attempt_that_may_still_be_running(committed_app, redis_conn):
    report = report_at(committed_app.test_client(), KING_STREET)
    redis_conn.flushdb()
    out_of_attempts(committed_app, report, last_attempt_minutes_ago=0)
    with committed_app.app_context():
        assert jobs.reconcile() == 0
    assert row(committed_app, report).state == "received"
    assert Queue("triage", connection=redis_conn).job_ids == []


# --------------------------------------------------------------------------------------------
# A real worker process


def test_real_worker_triages_twins_and_matches_photos(
    committed_app, migrated_database, redis_conn, monkeypatch
):
    monkeypatch.setenv("MEDIA_ROOT", str(media_root(committed_app)))
    import_london(committed_app)
    client = committed_app.test_client()
    first = report_at(client, KING_STREET)
    text_twin = report_at(client, north(KING_STREET, 100), CAR_WASH_AGAIN)
    photo_twin = report_at(client, north(KING_STREET, 60), MAID)
    accept(client, "orientation_1.jpg", first)
    accept(client, "orientation_6.jpg", photo_twin)
    # The dispatcher queues the new reports' triage jobs, as it does in production.
    run_dispatcher_burst(migrated_database)
    run_worker_burst(migrated_database)
    for report in (first, text_twin, photo_twin):
        stored = row(committed_app, report)
        assert (stored.state, stored.area_codes, stored.enrichment_failed) == ("new", [HF], False)
    found = links(committed_app)
    assert set(found) == {(first.id, text_twin.id), (text_twin.id, first.id),
                          (first.id, photo_twin.id), (photo_twin.id, first.id)}
    assert found[(photo_twin.id, first.id)].photo_match is True
    assert found[(text_twin.id, first.id)].photo_match is False
    assert "corroborated" in row(committed_app, first).priority_reasons
