"""The rules of report intake and of the reporter's own view of a report.

Plain functions: they work in the caller's unit of work (flush, never commit) and raise
ProblemError subclasses. Nothing here logs report text, contact details or coordinates.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis
from rq.job import Job
from sqlalchemy import literal, select

from stopapp.constants import REPORTER_STATUS, MessageSender, ReportState
from stopapp.db import one_statement
from stopapp.errors import IdempotencyMismatchError, NotFoundError, ValidationError
from stopapp.extensions import db, settings
from stopapp.media.models import Photo
from stopapp.reports.models import (
    ExploitationType,
    Report,
    ReportMessage,
    utcnow,
)
from stopapp.security import (
    ContactCipher,
    derive_receipt,
    idempotency_key_hash,
    receipt_hash,
    receipt_matches,
    sha256,
)
from stopapp.tasks import QUEUE_TRIAGE, JobSpec, live_jobs

DEFAULT_TYPES = ["unknown"]


@dataclass(frozen=True)
class Submission:
    """The answer to a report submission; identical for every retry of the same request."""

    report_id: uuid.UUID
    reference: str
    created_at: datetime
    receipt: str
    created: bool

    @property
    def reporter_status(self) -> str:
        # A replay repeats the first answer, which was always "received".
        return REPORTER_STATUS[ReportState.RECEIVED]


# The taxonomy changes rarely (an admin adds a type); each process re-reads it this often.
TAXONOMY_TTL_S = 60.0
_taxonomy_cache: dict[str, tuple[float, frozenset[str]]] = {}


# The triage job retries transient failures after these delays; after the last attempt the
# report goes to the queue flagged `enrichment_failed` (stopapp/review/enrichment.py).
TRIAGE_RETRY_INTERVALS_S = (10, 60, 300)
TRIAGE_MAX_ATTEMPTS = 1 + len(TRIAGE_RETRY_INTERVALS_S)
TRIAGE_TIMEOUT_S = 120


# The dispatcher queues new reports' triage in jobs of up to this many reports: queueing an RQ
# job costs about 0.2 ms of CPU in a batch, more than the poll that finds its report, so one
# job per report was the dispatcher's main cost under load. Kept small so that a burst
# is still shared between the triage workers, and a batch's time stays within a report's.
TRIAGE_BATCH_MAX = 20
TRIAGE_ONE, TRIAGE_MANY = "workers.jobs.triage_report", "workers.jobs.triage_reports"


def triage_jobs(report_ids: Sequence[uuid.UUID]) -> list[JobSpec]:
    """The enrichment jobs of these reports, TRIAGE_BATCH_MAX reports per job.

    Ids are deterministic (a lone report's job is named after it, a batch's after a hash of
    its ids), so sending the same jobs twice while they are live queues nothing new. A batch
    has the timeout and retries of one report's job: each attempt in it is counted on its
    report's row (workers/jobs.py triage_reports).
    """
    jobs = []
    for start in range(0, len(report_ids), TRIAGE_BATCH_MAX):
        batch = [str(i) for i in report_ids[start : start + TRIAGE_BATCH_MAX]]
        if len(batch) == 1:
            func, args, job_id = TRIAGE_ONE, (batch[0],), f"triage-report-{batch[0]}"
        else:
            digest = hashlib.sha256(",".join(sorted(batch)).encode()).hexdigest()[:32]
            func, args, job_id = TRIAGE_MANY, (batch,), f"triage-batch-{digest}"
        jobs.append(JobSpec(func=func, args=args, job_id=job_id, queue=QUEUE_TRIAGE,
                            timeout_s=TRIAGE_TIMEOUT_S, retry_intervals_s=TRIAGE_RETRY_INTERVALS_S))
    return jobs


def reports_in_live_triage_jobs(connection: Redis) -> set[uuid.UUID]:
    """Reports named by a triage job that is queued, running, scheduled for a retry or deferred.

    Reads every such job: meant for the rare look at reports that waited (the dispatcher's
    catch-up, the reconciler), not for the path of each report.
    """
    return {uuid.UUID(i) for job in live_jobs(connection, QUEUE_TRIAGE)
            for i in triage_job_reports(job)}


def triage_job_reports(job: Job) -> list[str]:
    """The report ids an RQ job of triage_jobs holds; none for any other job (photo matches
    share the queue)."""
    if job.func_name == TRIAGE_MANY:
        return list(job.args[0])
    return [job.args[0]] if job.func_name == TRIAGE_ONE else []


def untriaged_reports(connection: Redis, older_than: timedelta,
                      limit: int = 500) -> list[uuid.UUID]:
    """Reports still `received` after `older_than` that no live job will triage: their job
    was lost or never sent (see reports_awaiting_triage)."""
    waiting = reports_awaiting_triage(older_than, limit)
    if not waiting:
        return []
    live = reports_in_live_triage_jobs(connection)
    return [i for i in waiting if i not in live]


def list_exploitation_types(*, active_only: bool = True) -> list[ExploitationType]:
    """The taxonomy in display order."""
    query = select(ExploitationType).order_by(ExploitationType.position, ExploitationType.code)
    if active_only:
        query = query.where(ExploitationType.active.is_(True))
    return list(db.session.scalars(query))


def _request_fingerprint(fields: dict) -> bytes:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return sha256(canonical)


def _known_type_codes() -> frozenset[str]:
    """Active taxonomy codes, cached per process and database for TAXONOMY_TTL_S."""
    cache_key = settings().DATABASE_URL
    cached = _taxonomy_cache.get(cache_key)
    if cached is None or time.monotonic() - cached[0] > TAXONOMY_TTL_S:
        codes = frozenset(
            db.session.scalars(
                select(ExploitationType.code).where(ExploitationType.active.is_(True))
            )
        )
        cached = _taxonomy_cache[cache_key] = (time.monotonic(), codes)
    return cached[1]


def _check_types(codes: list[str]) -> list[str]:
    known = _known_type_codes()
    unknown = sorted(set(codes) - known)
    if unknown:
        raise ValidationError(
            "Unknown exploitation type.",
            errors={"exploitation_types": [f"Unknown value: {code}." for code in unknown]},
        )
    # Keep the client's order but drop repeats.
    return list(dict.fromkeys(codes))


def _encrypted_contact(contact: dict | None) -> bytes | None:
    """Contact details are kept only with explicit consent, and only encrypted."""
    if not contact or contact.get("consent_to_contact") is not True:
        return None
    details = {k: contact[k] for k in ("name", "phone", "email") if contact.get(k)}
    if not details:
        return None
    return ContactCipher(settings().DATA_ENCRYPTION_KEY).encrypt(details)


# One statement per submission, sent to psycopg as it is (no SQLAlchemy compilation; psycopg
# prepares it on the server after a few uses). A retry finds its row through the unique index
# on the key hash and inserts nothing. A new report is inserted with its reference drawn by
# the column default (report_reference(), migration i9_intake); nothing here is for the
# queue: the dispatcher (workers/dispatcher.py) finds the committed row by polling and queues
# its triage job. A concurrent first request with the same key makes the INSERT wait for it
# and then do nothing; the statement then returns no row, as its snapshot is older than that
# commit, and a second SELECT finds the row.
_SUBMIT = """
    WITH existing AS (
        SELECT id, reference, created_at, request_hash, false AS created
        FROM reports WHERE idempotency_key_hash = %(key_hash)s
    ), inserted AS (
        INSERT INTO reports (
            id, idempotency_key_hash, request_hash, receipt_hash, description,
            exploitation_types, location, location_accuracy_m, location_source, place,
            occurred_at, occurred_precision, ongoing, people, vehicles, language,
            app_platform, app_version, contact_encrypted, state, version
        )
        SELECT
            %(id)s::uuid, %(key_hash)s, %(request_hash)s, %(receipt_hash)s, %(description)s,
            %(exploitation_types)s::varchar(64)[],
            ST_SetSRID(ST_MakePoint(%(lon)s::float8, %(lat)s::float8), 4326)::geography,
            %(location_accuracy_m)s::float8, %(location_source)s, %(place)s,
            %(occurred_at)s::timestamptz, %(occurred_precision)s, %(ongoing)s::boolean,
            %(people)s::jsonb, %(vehicles)s::jsonb, %(language)s,
            %(app_platform)s, %(app_version)s, %(contact_encrypted)s::bytea, %(state)s, 1
        WHERE NOT EXISTS (SELECT FROM existing)
        ON CONFLICT (idempotency_key_hash) DO NOTHING
        RETURNING id, reference, created_at, request_hash, true AS created
    )
    SELECT * FROM inserted UNION ALL SELECT * FROM existing
"""


def _json_or_none(value: object) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _answer(row, fingerprint: bytes, receipt: str) -> Submission:  # noqa: ANN001 - a Row
    """The Submission for a stored row; a replay must repeat the body of the first request."""
    if row.request_hash != fingerprint:
        raise IdempotencyMismatchError(
            "This Idempotency-Key was already used for a different report.",
            errors={"Idempotency-Key": ["Already used with a different body."]},
        )
    return Submission(
        report_id=row.id,
        reference=row.reference,
        created_at=row.created_at,
        receipt=receipt,
        created=row.created,
    )


def submit_report(fields: dict, idempotency_key: uuid.UUID) -> Submission:
    """Store a new report, or return the first answer for a retried submission.

    `fields` is the validated request body (see api/schemas.py). Its one statement may run in
    autocommit (the caller's unit_of_work(single_statement=True)). The triage job is queued by
    the dispatcher once the row is committed; nothing here talks to Redis.

    Raises ValidationError for unknown exploitation types and IdempotencyMismatchError when the
    key was used before with a different body.
    """
    key_hash = idempotency_key_hash(idempotency_key)
    fingerprint = _request_fingerprint(fields)
    types = _check_types(fields.get("exploitation_types") or DEFAULT_TYPES)
    receipt = derive_receipt(settings().RECEIPT_KEY, idempotency_key)
    location = fields.get("location") or {}
    app_info = fields.get("app") or {}
    rows = one_statement(
        _SUBMIT,
        {
            "id": uuid.uuid4(),
            "key_hash": key_hash,
            "request_hash": fingerprint,
            "receipt_hash": receipt_hash(receipt),
            "description": fields["description"],
            "exploitation_types": types,
            "lon": location.get("lon"),
            "lat": location.get("lat"),
            "location_accuracy_m": location.get("accuracy_m"),
            "location_source": location.get("source"),
            "place": fields.get("place"),
            "occurred_at": fields.get("occurred_at"),
            "occurred_precision": fields.get("occurred_precision") or "unknown",
            "ongoing": bool(fields.get("ongoing")),
            "people": _json_or_none(fields.get("people")),
            "vehicles": _json_or_none(fields.get("vehicles")),
            "language": fields.get("language"),
            "app_platform": app_info.get("platform"),
            "app_version": app_info.get("version"),
            "contact_encrypted": _encrypted_contact(fields.get("contact")),
            "state": ReportState.RECEIVED.value,
        },
    )
    if rows:
        row = rows[0]
    else:  # a concurrent first request with this key committed meanwhile
        row = db.session.execute(
            select(
                Report.id, Report.reference, Report.created_at, Report.request_hash,
                literal(False).label("created"),
            ).where(Report.idempotency_key_hash == key_hash)
        ).one()
    return _answer(row, fingerprint, receipt)


def report_for_reporter(report_id: uuid.UUID, receipt: str | None) -> Report:
    """The report, if `receipt` is its receipt.

    Raises NotFoundError for an unknown id and for a wrong or missing receipt alike, so that a
    caller cannot tell whether a report exists.
    """
    report = db.session.get(Report, report_id)
    # Hash the presented receipt even for unknown ids: both paths then cost the same.
    if not receipt_matches(receipt, report.receipt_hash if report else None) or report is None:
        raise NotFoundError("No report with this id and receipt.")
    return report


def reporter_status(report_id: uuid.UUID, receipt: str | None) -> dict:
    """The reporter's coarse, safe view of their report, its photos and its messages.

    Raises NotFoundError as report_for_reporter does.
    """
    report = report_for_reporter(report_id, receipt)
    photos = db.session.scalars(
        select(Photo).where(Photo.report_id == report.id).order_by(Photo.created_at)
    )
    return {
        "id": report.id,
        "status": REPORTER_STATUS[ReportState(report.state)],
        "updated_at": report.updated_at,
        "photos": [
            {"id": p.id, "status": p.status, "reason": p.reject_reason} for p in photos
        ],
        "messages": [
            {"id": m.id, "from": m.sender, "body": m.body, "sent_at": m.created_at}
            for m in report.messages
        ],
    }


def add_reporter_message(report_id: uuid.UUID, receipt: str | None, body: str) -> ReportMessage:
    """Add the reporter's message to their report.

    Raises NotFoundError as report_for_reporter does.
    """
    report = report_for_reporter(report_id, receipt)
    message = ReportMessage(report_id=report.id, sender=MessageSender.REPORTER.value, body=body)
    db.session.add(message)
    db.session.flush()
    return message


def reports_awaiting_triage(older_than: timedelta, limit: int = 500) -> list[uuid.UUID]:
    """Ids of reports still `received` after `older_than`: their job was lost or never sent.

    Reports out of attempts are not among them: the reconciler flags those instead.
    """
    cutoff: datetime = utcnow() - older_than
    return list(
        db.session.scalars(
            select(Report.id)
            .where(Report.state == ReportState.RECEIVED.value, Report.created_at < cutoff,
                   Report.triage_attempts < TRIAGE_MAX_ATTEMPTS)
            .order_by(Report.created_at)
            .limit(limit)
        )
    )
