"""Queueing background jobs after the unit of work commits.

Services call `enqueue_after_commit`; nothing is sent to Redis until the database transaction
has committed, so a worker never sees an id that is not stored yet, and a rolled-back request
queues nothing. If Redis is down at that moment the data is safe in PostgreSQL and the
reconciler (workers/jobs.py) queues the work later: a failure here is logged, not raised.

Jobs are named by dotted path so that the core does not import the workers package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.job import Job, JobStatus
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_PENDING = "stopapp.pending_jobs"

# Queue names, with the work each carries.
QUEUE_TRIAGE = "triage"  # enrichment of new reports
QUEUE_MEDIA = "media"  # photo processing
QUEUE_MAINTENANCE = "maintenance"  # reconciler and other periodic work
QUEUE_FORWARDING = "forwarding"  # email to authorities
QUEUES = (QUEUE_TRIAGE, QUEUE_MEDIA, QUEUE_FORWARDING, QUEUE_MAINTENANCE)

# States in which a job still stands to run: queueing it again would only repeat it.
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


@dataclass(frozen=True)
class JobSpec:
    """A job to send: dotted function path, JSON-able arguments, and how to run it."""

    func: str
    args: tuple
    job_id: str
    queue: str
    timeout_s: int = 300
    retry_intervals_s: tuple[int, ...] = (10, 60, 300)
    meta: dict = field(default_factory=dict)


def send_job(connection: Redis, spec: JobSpec, *, skip_if_live: bool = True) -> bool:
    """Queue `spec` now. Returns False when a live job with its id already exists.

    Raises redis.exceptions.RedisError when Redis cannot be reached.
    """
    if skip_if_live:
        try:
            existing = Job.fetch(spec.job_id, connection=connection)
        except Exception:  # noqa: BLE001 - rq raises NoSuchJobError and others for missing jobs
            existing = None
        if existing is not None and existing.get_status(refresh=False) in _LIVE:
            return False
    send_jobs(connection, [spec])
    return True


def live_jobs(connection: Redis, queue_name: str) -> list[Job]:
    """The jobs of a queue that still stand to run: queued, started, scheduled (a retry
    waiting for its delay) or deferred. Raises RedisError when Redis cannot be reached."""
    queue = Queue(queue_name, connection=connection)
    registries = (queue.started_job_registry, queue.scheduled_job_registry,
                  queue.deferred_job_registry)
    # Read only: the registries' clean-up (moving abandoned jobs on) is the workers' business.
    ids = queue.get_job_ids() + [i for r in registries for i in r.get_job_ids(cleanup=False)]
    return [job for job in Job.fetch_many(list(dict.fromkeys(ids)), connection=connection) if job]


def send_jobs(connection: Redis, specs: list[JobSpec]) -> None:
    """Queue `specs` now, all in one pipeline: one round trip to Redis for the whole batch.

    Meant for jobs of which no live copy exists (a job sent twice would run twice: harmless,
    as every job is safe to run twice, but wasted). Raises redis.exceptions.RedisError when
    Redis cannot be reached; then none or all of the batch is queued (MULTI/EXEC).
    """
    by_queue: dict[str, list[JobSpec]] = {}
    for spec in specs:
        by_queue.setdefault(spec.queue, []).append(spec)
    with connection.pipeline() as pipe:
        for name, group in by_queue.items():
            Queue(name, connection=connection).enqueue_many(
                [
                    Queue.prepare_data(
                        spec.func,
                        args=spec.args,
                        job_id=spec.job_id,
                        timeout=spec.timeout_s,
                        retry=Retry(
                            max=len(spec.retry_intervals_s), interval=list(spec.retry_intervals_s)
                        )
                        if spec.retry_intervals_s
                        else None,
                        failure_ttl=7 * 24 * 3600,
                        result_ttl=3600,
                        meta=spec.meta or None,
                    )
                    for spec in group
                ],
                pipeline=pipe,
            )
        pipe.execute()


def enqueue_after_commit(session: Session, connection: Redis, spec: JobSpec) -> None:
    """Send `spec` once `session` commits; drop it if the session rolls back.

    Meant for the job of a row the session creates: no job can exist for it yet, so it is
    sent without first looking for a live one (the reconciler does look).
    """
    session.info.setdefault(_PENDING, []).append((connection, spec))


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    for connection, spec in session.info.pop(_PENDING, []):
        try:
            send_job(connection, spec, skip_if_live=False)
        except RedisError:
            # The work is committed; the reconciler will queue it once Redis answers again.
            log.warning("queueing %s failed; the reconciler will retry it", spec.job_id)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
