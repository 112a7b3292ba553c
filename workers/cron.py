"""Periodic jobs, for `rq cron workers.cron`."""

from rq import cron

from stopapp.tasks import QUEUE_MAINTENANCE
from workers.jobs import reconcile

cron.register(reconcile, queue_name=QUEUE_MAINTENANCE, interval=30, job_timeout=120)
