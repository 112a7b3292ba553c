"""The triage job's rules: areas, priority and possible duplicates of a new report.

A report arrives `received`; enrichment, in one unit of work, stores the codes of the areas that
cover its point, links it (in both directions) to possible duplicates, computes its priority
with the reasons for it, and moves it to `new`. A report whose enrichment keeps failing reaches
the queue all the same, as `new` with `enrichment_failed` set, so that it is never left unseen.

The priority rule is written out as a table in the README; keep the two in step.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import any_, bindparam, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from stopapp.areas.services import area_codes_covering
from stopapp.audit.services import record
from stopapp.constants import LocationSource, OccurredPrecision, PhotoStatus, ReportState
from stopapp.extensions import db, settings
from stopapp.media.models import Photo
from stopapp.reports.models import Report, utcnow
from stopapp.review.models import ReportLink
from stopapp.tasks import QUEUE_TRIAGE, JobSpec

# FOR NO KEY UPDATE, not FOR UPDATE: inserting a link takes a KEY SHARE lock on both reports
# (the foreign keys), which FOR UPDATE would block, so two twins enriched at once would each
# wait for the other's report.
_ROW_LOCK = {"key_share": True}
_UUID_ARRAY = ARRAY(UUID(as_uuid=True))

# ---------------------------------------------------------------------------------------------
# The priority rule: 0-100, higher is more urgent. Points per reason, added to a base and capped.

BASE_POINTS = 10
POINTS = {
    "minors": 35,  # exploitation type `child`, or the reporter says minors are involved
    "ongoing": 20,  # the reporter says it is still going on
    "recent_72h": 15,  # it happened at most 72 hours before the report (exact time or day)
    "recent_14d": 5,  # else at most 14 days before (exact, day or week)
    "photos": 5,  # at least one photo that was not rejected
    "corroborated": 10,  # one or two other reports look like the same thing
    "corroborated_3plus": 20,  # three or more do
    "precise_location": 10,  # a GPS fix or map pin within 100 m
    "approximate_location": 5,  # else a point within 1 km (or GPS / pin of unknown accuracy)
}
PRECISE_M = 100
APPROXIMATE_M = 1000
# Each reason in plain words, as the pages show it (a test keeps it in step with POINTS).
REASON_LABELS = {
    "minors": "Children may be involved",
    "ongoing": "Still going on",
    "recent_72h": "Happened in the 3 days before the report",
    "recent_14d": "Happened in the 2 weeks before the report",
    "photos": "Has photos",
    "corroborated": "1 or 2 similar reports",
    "corroborated_3plus": "3 or more similar reports",
    "precise_location": "Precise location (within 100 m)",
    "approximate_location": "Approximate location (within 1 km)",
}


def reason_label(code: str) -> str:
    """`code` in plain words with the points it gives, e.g. "Still going on (+20)"; an unknown
    code (from an older rule) as it is."""
    label = REASON_LABELS.get(code)
    return f"{label} (+{POINTS[code]})" if label else code


@dataclass(frozen=True)
class Priority:
    value: int
    reasons: list[str]


def compute_priority(report: Report, *, photo_count: int, link_count: int) -> Priority:
    """The priority of `report` by the documented rule, with the reasons that gave points.

    Recency is measured against the report's own creation time, so the result does not drift
    when the rule is applied again later.
    """
    reasons = []
    people = report.people or {}
    if "child" in report.exploitation_types or people.get("minors") is True:
        reasons.append("minors")
    if report.ongoing:
        reasons.append("ongoing")
    if report.occurred_at is not None:
        age = (report.created_at or utcnow()) - report.occurred_at
        precision = report.occurred_precision
        if age <= timedelta(hours=72) and precision in (OccurredPrecision.EXACT,
                                                        OccurredPrecision.DAY):
            reasons.append("recent_72h")
        elif age <= timedelta(days=14) and precision in (
            OccurredPrecision.EXACT, OccurredPrecision.DAY, OccurredPrecision.WEEK
        ):
            reasons.append("recent_14d")
    if photo_count > 0:
        reasons.append("photos")
    if link_count >= CORROBORATED_AT:
        reasons.append("corroborated_3plus")
    elif link_count > 0:
        reasons.append("corroborated")
    location_reason = _location_reason(report)
    if location_reason:
        reasons.append(location_reason)
    return Priority(min(100, BASE_POINTS + sum(POINTS[r] for r in reasons)), reasons)


def _location_reason(report: Report) -> str | None:
    if report.location is None:
        return None
    accuracy = report.location_accuracy_m
    pinned = report.location_source in (LocationSource.GPS, LocationSource.MAP)
    if pinned and accuracy is not None and accuracy <= PRECISE_M:
        return "precise_location"
    if (accuracy is not None and accuracy <= APPROXIMATE_M) or (accuracy is None and pinned):
        return "approximate_location"
    return None


# ---------------------------------------------------------------------------------------------
# Possible duplicates

# One statement: the other reports within the radius (GiST on the geography) and the time
# window whose description is similar enough (pg_trgm) or that share a photo that looks alike
# (Hamming distance of the 64-bit perceptual hashes), upserted as links in both directions;
# it returns the ids linked to. Rows go in in key order, so that two twins enriched at once
# wait for each other instead of deadlocking. A link already stored with the same figures is
# not written again (only locked): both reports' jobs compute each pair, and in a hot spot,
# where the jobs run behind the reports, the second job used to rewrite every pair the first
# had written.
_LINK_DUPLICATES = text("""
WITH me AS (
    SELECT id, location, created_at, description FROM reports
    WHERE id = :report_id AND location IS NOT NULL
), matches AS (
    SELECT o.id AS other_id,
           ST_Distance(o.location, me.location) AS distance_m,
           abs(extract(epoch FROM o.created_at - me.created_at)) / 3600 AS hours_apart,
           similarity(o.description, me.description) AS text_similarity,
           EXISTS (
               SELECT 1 FROM photos p JOIN photos q
                 ON bit_count((p.phash # q.phash)::bit(64)) <= :max_bits
               WHERE p.report_id = me.id AND q.report_id = o.id
           ) AS photo_match
    FROM me JOIN reports o
      ON o.id <> me.id
     AND ST_DWithin(o.location, me.location, :radius_m)
     AND o.created_at BETWEEN me.created_at - make_interval(days => :window_days)
                          AND me.created_at + make_interval(days => :window_days)
), linked AS (
    SELECT * FROM matches WHERE text_similarity >= :min_similarity OR photo_match
), pairs AS (
    SELECT :report_id AS report_id, other_id, distance_m, hours_apart, text_similarity,
           photo_match FROM linked
    UNION ALL
    SELECT other_id, :report_id, distance_m, hours_apart, text_similarity, photo_match
    FROM linked
), written AS (
    INSERT INTO report_links AS l
        (report_id, other_id, distance_m, hours_apart, text_similarity, photo_match,
         created_at)
    SELECT report_id, other_id, distance_m, hours_apart, text_similarity, photo_match, now()
    FROM pairs ORDER BY report_id, other_id
    ON CONFLICT (report_id, other_id) DO UPDATE SET
        distance_m = excluded.distance_m, hours_apart = excluded.hours_apart,
        text_similarity = excluded.text_similarity,
        photo_match = l.photo_match OR excluded.photo_match
    WHERE (l.distance_m, l.hours_apart, l.text_similarity, l.photo_match)
          IS DISTINCT FROM (excluded.distance_m, excluded.hours_apart,
                            excluded.text_similarity, l.photo_match OR excluded.photo_match)
)
SELECT other_id FROM linked
""")


def link_possible_duplicates(report_id: uuid.UUID) -> list[uuid.UUID]:
    """Link `report_id` both ways to every possible duplicate; returns the ids it links to.

    A report without a point (a place name only) is compared with nothing.
    """
    config = settings()
    returned = db.session.scalars(_LINK_DUPLICATES, {
        "report_id": report_id,
        "radius_m": config.DUPLICATE_RADIUS_M,
        "window_days": config.DUPLICATE_WINDOW_DAYS,
        "min_similarity": config.DUPLICATE_TEXT_SIMILARITY,
        "max_bits": config.DUPLICATE_PHOTO_MAX_BITS,
    })
    return sorted(set(returned))


# compute_priority tells 0, 1 or 2, and CORROBORATED_AT or more links apart: links are counted
# only that far, so that a report in a hot spot (hundreds of twins) costs no more to rank.
CORROBORATED_AT = 3


def _link_count(cap: int):  # noqa: ANN202 - a SQL expression
    """The report's links, counted up to `cap`.

    The limit is written into the SQL, not sent as a parameter: in psycopg's prepared (generic)
    plan an unknown LIMIT made PostgreSQL read every link of a twin through a bitmap scan to
    keep 4 (138 ms against 18 ms for 1,000 twins at one place, each with 1,000 links).
    """
    first = (select(ReportLink.other_id).where(ReportLink.report_id == Report.id)
             .correlate(Report)  # a FROM subquery is not correlated by itself
             .limit(literal_column(str(int(cap)))))
    return select(func.count()).select_from(first.subquery()).scalar_subquery()


def _counts(report_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """(photos not rejected, links up to CORROBORATED_AT) of each report, in one query."""
    photos = (
        select(func.count()).where(Photo.report_id == Report.id,
                                   Photo.status != PhotoStatus.REJECTED.value)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Report.id, photos, _link_count(CORROBORATED_AT)).where(_id_among(report_ids))
    )
    return {row[0]: (row[1], row[2]) for row in rows}


def _id_among(report_ids: list[uuid.UUID]):  # noqa: ANN202 - a SQL expression
    """`reports.id = ANY(:ids)`: one statement text whatever the number of ids (IN would be
    rendered again for each length, and never prepared)."""
    return Report.id == any_(bindparam("ids", list(report_ids), type_=_UUID_ARRAY))


def _apply_priority(report: Report, photo_count: int, link_count: int) -> None:
    # Unchanged values are not written (SQLAlchemy compares), so the version stays.
    priority = compute_priority(report, photo_count=photo_count, link_count=link_count)
    report.priority, report.priority_reasons = priority.value, priority.reasons


def _queued(condition) -> list[Report]:  # noqa: ANN001 - a SQL condition
    """The reports matching `condition` that wait in the queue (`new`), locked; one locked
    at this moment is skipped."""
    return list(db.session.scalars(
        select(Report).where(condition, Report.state == ReportState.NEW.value)
        .with_for_update(skip_locked=True, **_ROW_LOCK)
    ))


def _refresh_queued_priorities(twins: list[uuid.UUID], also: Report | None = None) -> None:
    """Recompute the priority of the twins just linked that still wait in the queue (`new`),
    and of `also` (locked by the caller), with the same count query.

    A twin linked to more than CORROBORATED_AT reports had CORROBORATED_AT before this link,
    so its priority cannot change: it is not locked or counted (in a hot spot every new report
    is linked to every one before it; refreshing them all made the work grow with the square
    of their number). A report an analyst has taken is left alone (its version would change
    under them), and so is one locked at this moment (SKIP LOCKED: two twins enriched at once
    must not deadlock; the other's own job computes its priority with the link anyway).
    """
    may_change = _link_count(CORROBORATED_AT + 1) <= CORROBORATED_AT
    reports = _queued(_id_among(twins) & may_change) if twins else []
    if also is not None:
        reports.append(also)
    counts = _counts([r.id for r in reports]) if reports else {}
    for report in reports:
        _apply_priority(report, *counts[report.id])


# ---------------------------------------------------------------------------------------------
# The job's steps

def _limit_lock_wait() -> None:
    """Wait at most TRIAGE_LOCK_TIMEOUT_MS for any lock in this transaction, then fail (and be
    retried) rather than hold a worker behind a long transaction or a migration."""
    db.session.execute(text("SELECT set_config('lock_timeout', :value, true)"),
                       {"value": f"{settings().TRIAGE_LOCK_TIMEOUT_MS}ms"})


def _received(report_id: uuid.UUID) -> Report | None:
    report = db.session.get(Report, report_id, with_for_update=_ROW_LOCK)
    if report is None or report.state != ReportState.RECEIVED.value:
        return None
    return report


def start_attempt(report_id: uuid.UUID) -> int | None:
    """Count one more triage attempt on the row; None when the report is no longer `received`.

    Committed before the work itself, so that a job that kills its worker still counts.
    """
    _limit_lock_wait()
    # One UPDATE (it locks the row as the ORM's SELECT ... FOR NO KEY UPDATE would) instead of
    # loading the whole report to change one counter; version and updated_at move as the ORM
    # would move them (the reconciler reads updated_at as the time of the last attempt).
    # An ORM-enabled UPDATE: a copy of the report already in the session is updated too.
    return db.session.execute(
        update(Report)
        .where(Report.id == report_id, Report.state == ReportState.RECEIVED.value)
        .values(triage_attempts=Report.triage_attempts + 1, version=Report.version + 1,
                updated_at=utcnow())
        .returning(Report.triage_attempts)
    ).scalar_one_or_none()


def enrich_report(report_id: uuid.UUID) -> bool:
    """Enrich a `received` report and move it to `new`; audited as `triage.enriched`.

    Safe to run twice: a report already past `received`, or gone, is left as it is.
    Returns True when the report moved. Raises database errors (a lock wait over
    TRIAGE_LOCK_TIMEOUT_MS among them) for the job to retry.
    """
    _limit_lock_wait()
    report = _received(report_id)
    if report is None:
        return False
    location = select(Report.location).where(Report.id == report.id).scalar_subquery()
    report.area_codes = area_codes_covering(location)
    twins = link_possible_duplicates(report.id)
    # Its own priority and its queued twins' in one count query (the twins locked first).
    _refresh_queued_priorities(twins, also=report)
    report.state = ReportState.NEW.value
    record(None, "triage.enriched", report_id=report.id, detail={
        "areas": report.area_codes, "priority": report.priority,
        "priority_reasons": report.priority_reasons, "possible_duplicates": len(twins),
        "attempt": report.triage_attempts,
    })
    db.session.flush()
    return True


def fail_enrichment(report_id: uuid.UUID, error: str) -> bool:
    """Put a report whose enrichment failed for good into the queue, flagged.

    Its priority comes from its own fields only (no areas, photos or duplicates: the step that
    failed may be any of those). `error` is an exception's type name, never its message (a
    database message can quote the report). Returns False if the report is no longer
    `received`.
    """
    _limit_lock_wait()
    report = _received(report_id)
    if report is None:
        return False
    _apply_priority(report, 0, 0)
    report.state = ReportState.NEW.value
    report.enrichment_failed = True
    record(None, "triage.enriched", report_id=report.id, detail={
        "enrichment_failed": True, "error": error[:100], "attempts": report.triage_attempts,
        "priority": report.priority, "priority_reasons": report.priority_reasons,
    })
    db.session.flush()
    return True


def reports_out_of_attempts(max_attempts: int, idle: timedelta, limit: int = 500
                            ) -> list[uuid.UUID]:
    """Reports still `received` after `max_attempts` whose last attempt started over `idle`
    ago: that attempt died with its worker (a job cannot outlive its timeout), so nothing
    will retry it."""
    return list(db.session.scalars(
        select(Report.id).where(
            Report.state == ReportState.RECEIVED.value,
            Report.triage_attempts >= max_attempts,
            Report.updated_at < utcnow() - idle,
        ).order_by(Report.created_at).limit(limit)
    ))


# ---------------------------------------------------------------------------------------------
# Photos arrive after the report: look for photo twins again once one is ready.

def photo_matches_job(report_id: uuid.UUID) -> JobSpec:
    """The job that looks again for photo twins of a report (deterministic id)."""
    return JobSpec(
        func="workers.jobs.recheck_photo_matches",
        args=(str(report_id),),
        job_id=f"photo-matches-{report_id}",
        queue=QUEUE_TRIAGE,
        timeout_s=120,
    )


def recheck_photo_matches(report_id: uuid.UUID) -> list[uuid.UUID]:
    """Link a report to reports whose photos look like its (newly ready) photos, and refresh
    the priority of the report and its twins while they wait in the queue.

    A report still `received` is left to its triage job, which does all of this. Safe to run
    twice. Returns the ids the report is linked to.
    """
    _limit_lock_wait()
    state = db.session.scalar(select(Report.state).where(Report.id == report_id))
    if state in (None, ReportState.RECEIVED.value):
        return []
    twins = link_possible_duplicates(report_id)
    # Its own priority whatever its links (its photos changed), by a lookup of its own, so
    # that each lookup stays on the primary key.
    own = _queued(Report.id == report_id)
    _refresh_queued_priorities(twins, also=own[0] if own else None)
    db.session.flush()
    return twins
