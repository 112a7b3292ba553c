"""The jobs. Each takes ids, loads what it needs, calls one service, and is safe to run twice."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from rq.timeouts import BaseTimeoutException

from stopapp.db import unit_of_work
from stopapp.extensions import redis_client, settings
from stopapp.forwarding import delivery, pgp
from stopapp.forwarding import message as forward_message
from stopapp.forwarding import services as forwarding
from stopapp.media import services as media
from stopapp.reports import services as reports
from stopapp.review import enrichment
from stopapp.tasks import send_job
from workers.context import in_app_context

log = logging.getLogger(__name__)

# An upload older than this with no photo row lost its row in a crash: the sweep deletes it.
ORPHAN_AFTER = timedelta(hours=1)


@in_app_context
def triage_report(report_id: str) -> bool:
    """Enrich a new report (areas, priority, possible duplicates) and put it in the queue.

    Each attempt is counted on the row before the work. Errors are raised for RQ to retry;
    after the last attempt the report goes to the queue flagged `enrichment_failed` instead,
    and so does a report queued again past the limit. Returns True when the report moved.
    """
    return _triage(uuid.UUID(report_id))


class TriageRetry(Exception):
    """Some reports of a batch failed an attempt that was not their last: run the job again."""


@in_app_context
def triage_reports(report_ids: list[str]) -> int:
    """triage_report for each report of a batch (as the dispatcher queues them), each in its
    own transactions, so that one report's error does not hold back the others.

    When some failed an attempt that was not their last, the job raises TriageRetry once the
    whole batch is done, and RQ runs it again after the next delay: the reports that moved are
    then skipped at once, without counting an attempt. Returns how many reports moved.
    """
    moved, failed = 0, 0
    for report_id in report_ids:
        try:
            moved += _triage(uuid.UUID(report_id))
        except Exception as exc:  # noqa: BLE001 - counted on the row, retried with the batch
            if _timed_out(exc):
                raise  # RQ's job timeout ends the batch: the retry starts where it stopped
            log.warning("triage of report %s failed: %s", report_id, _error_name(exc))
            failed += 1
    if failed:
        raise TriageRetry(f"{failed} of {len(report_ids)} report(s) to try again")
    return moved


def _timed_out(exc: BaseException | None) -> bool:
    """Whether RQ's job timeout is behind `exc`: raised in the middle of a query, it can come
    out as the error of the rollback that followed (the connection was still busy)."""
    while exc is not None:
        if isinstance(exc, BaseTimeoutException):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _triage(report: uuid.UUID) -> bool:
    with unit_of_work():
        attempt = enrichment.start_attempt(report)
    if attempt is None:
        return False
    try:
        if attempt > reports.TRIAGE_MAX_ATTEMPTS:
            raise RuntimeError("attempt limit reached")
        with unit_of_work():
            return enrichment.enrich_report(report)
    except Exception as exc:
        if attempt < reports.TRIAGE_MAX_ATTEMPTS:
            raise
        error = _error_name(exc)
        log.error("triage of report %s failed for good: %s", report, error)
        with unit_of_work():
            return enrichment.fail_enrichment(report, error)


def _error_name(exc: BaseException) -> str:
    # A database error arrives wrapped (workers/context.py strips its message only when it
    # leaves the job): keep the driver's class name, never the message.
    return type(getattr(exc, "orig", None) or exc).__name__


@in_app_context
def recheck_photo_matches(report_id: str) -> int:
    """Look again for reports with photos like this report's, now that one is ready."""
    with unit_of_work():
        return len(enrichment.recheck_photo_matches(uuid.UUID(report_id)))


@in_app_context
def reconcile() -> int:
    """Queue work that was committed but never queued (Redis was down, or a job was lost),
    and erase what photos keep for retries once their retry window is over.

    Returns how many jobs it sent.
    """
    grace = timedelta(seconds=settings().RECONCILE_AFTER_S)
    # A report out of attempts whose last attempt cannot be running any more (it would have
    # timed out) died with its worker: it goes to the queue flagged, and is not queued again.
    idle = grace + timedelta(seconds=reports.TRIAGE_TIMEOUT_S)
    with unit_of_work():
        exhausted = enrichment.reports_out_of_attempts(reports.TRIAGE_MAX_ATTEMPTS, idle)
    for report in exhausted:
        log.error("triage of report %s ran out of attempts", report)
        with unit_of_work():
            enrichment.fail_enrichment(report, "attempts_exhausted")
    with unit_of_work():
        specs = reports.triage_jobs(reports.untriaged_reports(redis_client(), grace))
        specs += [media.process_job(i) for i in media.photos_awaiting_processing(grace)]
        specs += [forwarding.forward_job(i) for i in forwarding.forwards_awaiting_delivery(grace)]
        swept = media.sweep_quarantine(ORPHAN_AFTER)
        forgotten = media.forget_expired_uploads()
    sent = sum(send_job(redis_client(), spec) for spec in specs)
    if sent or swept or forgotten:
        log.info(
            "reconciler queued %d job(s), deleted %d orphaned upload(s), erased %d retry digest(s)",
            sent, swept, forgotten,
        )
    return sent


@in_app_context
def process_photo(photo_id: str) -> str:
    """Rebuild a quarantined photo without metadata; the original is deleted in every outcome.

    Transient errors are raised for RQ to retry; after the last attempt the photo is rejected
    as `processing_failed` (recorded on the row) instead. A photo that keeps killing its worker
    is stopped the same way once the reconciler has re-queued it past the attempt limit.
    """
    photo = uuid.UUID(photo_id)
    with unit_of_work():
        attempt = media.start_attempt(photo)
    if attempt is None:
        return "nothing to do"
    try:
        if attempt > media.MAX_ATTEMPTS:
            raise RuntimeError("attempt limit reached")
        with unit_of_work():
            quarantine_key = media.process_photo(photo)
    except Exception as exc:
        if attempt < media.MAX_ATTEMPTS:
            raise
        log.error("photo %s failed for good: %s", photo_id, type(exc).__name__)
        with unit_of_work():
            quarantine_key = media.fail_photo(photo, type(exc).__name__)
    if quarantine_key:
        media.storage().quarantine_delete(quarantine_key)
    return "done"


@in_app_context
def send_forward(forward_id: str) -> str:
    """Deliver one forward by SMTP; safe to run twice (see stopapp/forwarding/delivery.py).

    Returns the forward's status. Raises TransientDeliveryError after recording a transient
    failure, so that RQ runs the job again after the next delay.
    """
    forward = uuid.UUID(forward_id)
    with delivery.forward_lock(forward) as locked:
        if not locked:
            return "busy"
        with unit_of_work():
            if delivery.start_attempt(forward) is None:
                return "nothing to do"
        encrypted = None
        try:
            with unit_of_work():
                envelope = forward_message.build(delivery.get_forward(forward))
            encrypted = envelope.encrypted
            outcome = delivery.transmit(envelope, settings())
        except (forward_message.NoUsableKey, pgp.EncryptionFailed) as exc:
            # Never plaintext instead, and trying again would not help.
            outcome = delivery.Outcome(accepted=False, transient=False, reply=str(exc))
        except Exception as exc:  # noqa: BLE001 - recorded on the row, retried like SMTP trouble
            log.error("forward %s: building the message failed: %s", forward_id,
                      type(exc).__name__)
            outcome = delivery.Outcome(False, True, f"building failed: {type(exc).__name__}")
        with unit_of_work():
            status = delivery.record_outcome(forward, outcome, encrypted)
    if status == "retrying":
        raise delivery.TransientDeliveryError(outcome.reply)
    return status
