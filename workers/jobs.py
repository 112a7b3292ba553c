"""The jobs. Each takes ids, loads what it needs, calls one service, and is safe to run twice."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from stopapp.db import unit_of_work
from stopapp.extensions import redis_client, settings
from stopapp.reports import services as reports
from stopapp.tasks import send_job
from workers.context import in_app_context

log = logging.getLogger(__name__)


@in_app_context
def triage_report(report_id: str) -> bool:
    """Enrich a new report and put it in the analysts' queue."""
    with unit_of_work():
        return reports.enrich_report(uuid.UUID(report_id))


@in_app_context
def reconcile() -> int:
    """Queue work that was committed but never queued (Redis was down, or a job was lost).

    Returns how many jobs it sent.
    """
    grace = timedelta(seconds=settings().RECONCILE_AFTER_S)
    with unit_of_work():
        waiting = reports.reports_awaiting_triage(grace)
    specs = [reports.triage_job(report_id) for report_id in waiting]
    sent = sum(send_job(redis_client(), spec) for spec in specs)
    if sent:
        log.info("reconciler queued %d job(s)", sent)
    return sent
