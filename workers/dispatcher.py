"""The dispatcher: queues the triage job of every new report, found by polling PostgreSQL.

`python -m workers.dispatcher [--burst]`; one is enough (two would only queue some jobs twice,
which the jobs tolerate).

This is a transactional outbox. The committed report row is the durable record of the work;
the dispatcher reads the rows committed since its last look, several times a second, and
queues their jobs through one Redis pipeline, so the web request never talks to Redis for its
job and a burst of reports costs one round trip. An INSERT pays nothing for it: no trigger and
no NOTIFY (whose commit takes a lock that every notifying transaction waits for, WAL flush
included; removed in migration i15_poll_outbox after `bench/intake.py` measured it).

Which rows are new: every poll asks for the reports still `received` whose `created_at` (the
INSERT's transaction start, the column default) is at or after a horizon, then moves the
horizon to the start of the oldest transaction that was open just before the poll (from
`pg_stat_activity`), less a margin. A transaction invisible to one poll was open then, so its
reports are at or after the next horizon and the next poll sees them. The ids seen recently
are remembered, so a report is queued once. Two limits keep a poll cheap: the horizon never
lags the clock by more than MAX_LAG_S (a transaction open longer than that is left to the
reconciler), and, for the open transactions to be seen, the dispatcher's database role must
be the web app's, or a superuser, or hold `pg_read_all_stats` (others' rows read NULL).

Nothing is lost when a link fails:

- Redis down: the ids stay pending here and are sent once Redis answers again.
- The dispatcher down, or its PostgreSQL connection lost: when it (re)connects it queues
  every report still `received` whose job is not live in Redis, then polls again.
- Anything else (a transaction open past MAX_LAG_S, a clock stepped back): the reconciler
  (workers/jobs.py, run by `rq cron`) re-queues reports still `received` after
  RECONCILE_AFTER_S.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta
from threading import Event

import psycopg
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from stopapp.db import libpq_dsn, unit_of_work
from stopapp.reports.services import triage_jobs, untriaged_reports
from stopapp.tasks import send_jobs

log = logging.getLogger(__name__)

APPLICATION_NAME = "stopapp-dispatcher"
# Between polls while reports arrive: what came meanwhile goes out as one pipeline, in jobs
# of up to TRIAGE_BATCH_MAX reports (stopapp/reports/services.py). Queueing an RQ job costs
# about 0.2 ms of CPU in a batch, so 50 ms of gathering (25 to 65 reports at 500 to 1,300
# reports/s) saves CPU, for 25 ms more latency on average against the 2 s target.
POLL_S = 0.05
# With nothing new, the pause doubles up to this (an idle service polls 5 times a second).
IDLE_POLL_S = 0.2
# The horizon's margin, for a transaction whose start time was taken just before it showed
# in pg_stat_activity; and the most it lags the clock (see the module's docstring).
MARGIN_S = 0.05
MAX_LAG_S = 2.0
BATCH_MAX = 500
# Ids already sent, remembered so that one seen again (the horizon's margin, or the catch-up)
# is sent once: more than MAX_LAG_S of reports at any intake rate this service can take.
RECENT_MAX = 20_000
# Ids kept while Redis is down; past this the database is the list (catch-up once it is back).
PENDING_MAX = 100_000
CATCH_UP_LIMIT = 10_000
BACKOFF_MAX_S = 5.0

# Autocommitted, so each statement has its own snapshot, and the horizon is read before the
# rows (a transaction that committed between the two reads would otherwise be in neither).
_HORIZON = """
    SELECT greatest(
        least(clock_timestamp(), min(xact_start)) - make_interval(secs => %(margin)s),
        clock_timestamp() - make_interval(secs => %(max_lag)s))
    FROM pg_stat_activity
    WHERE datname = current_database() AND backend_type = 'client backend'
      AND pid <> pg_backend_pid()
"""
_NEW_ROWS = """
    SELECT id FROM reports
    WHERE state = 'received' AND created_at >= %(horizon)s
    ORDER BY created_at
"""


class Dispatcher:
    """Poll for new reports and queue their triage jobs in batches.

    `app` gives the database (for the catch-up query) and settings; `redis` is where jobs go.
    """

    def __init__(self, app, redis: Redis) -> None:  # noqa: ANN001 - a Flask app
        self.app = app
        self.redis = redis
        self.pending: list[uuid.UUID] = []
        self.recent: OrderedDict[uuid.UUID, None] = OrderedDict()
        self.conn: psycopg.Connection | None = None
        # None until the catch-up has run on the current connection.
        self.horizon: datetime | None = None
        self.pause_s = POLL_S
        self.next_poll = 0.0

    # -- the PostgreSQL side -----------------------------------------------------------------

    def connect(self) -> None:
        """A fresh connection; what was committed before is found by the catch-up."""
        self.close()
        self.conn = psycopg.connect(
            libpq_dsn(self.app.extensions["stopapp.config"].DATABASE_URL),
            autocommit=True, application_name=APPLICATION_NAME,
        )
        self.horizon = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _read_horizon(self) -> datetime:
        assert self.conn is not None
        return self.conn.execute(
            _HORIZON, {"margin": MARGIN_S, "max_lag": MAX_LAG_S}
        ).fetchone()[0]

    def _poll(self) -> int:
        """Take the reports committed since the last poll; returns how many are new here."""
        assert self.conn is not None and self.horizon is not None
        horizon = self._read_horizon()
        rows = self.conn.execute(_NEW_ROWS, {"horizon": self.horizon}).fetchall()
        self.horizon = horizon
        fresh = [report_id for (report_id,) in rows if report_id not in self.recent]
        self.pending.extend(fresh)
        for report_id in fresh:
            self._remember(report_id)
        return len(fresh)

    # -- the Redis side ------------------------------------------------------------------------

    def _catch_up(self) -> int:
        """Queue the triage of every report still `received` that no live job will triage."""
        horizon = self._read_horizon()
        with self.app.app_context(), unit_of_work():
            caught_up = untriaged_reports(self.redis, timedelta(0), limit=CATCH_UP_LIMIT)
        send_jobs(self.redis, triage_jobs(caught_up))
        for report_id in caught_up:
            self._remember(report_id)
        self.horizon = horizon
        if caught_up:
            log.info("dispatcher caught up: queued %d report(s)", len(caught_up))
        return len(caught_up)

    def _send_pending(self) -> int:
        sent = 0
        while self.pending:
            batch, rest = self.pending[:BATCH_MAX], self.pending[BATCH_MAX:]
            send_jobs(self.redis, triage_jobs(list(dict.fromkeys(batch))))
            self.pending = rest
            sent += len(batch)
        return sent

    def _remember(self, report_id: uuid.UUID) -> None:
        self.recent[report_id] = None
        if len(self.recent) > RECENT_MAX:
            self.recent.popitem(last=False)

    # -- the loop ----------------------------------------------------------------------------

    def dispatch_once(self, timeout_s: float = 1.0) -> int:
        """Poll until new reports come or `timeout_s` has passed, and queue them (and what is
        owed).

        Polls are POLL_S apart while reports arrive, up to IDLE_POLL_S apart while none do.
        Returns how many reports were queued (in jobs of up to TRIAGE_BATCH_MAX reports).
        Raises RedisError (the ids stay pending), and psycopg.Error or DBAPIError (call
        connect() again: the catch-up then covers the gap).
        """
        if self.conn is None:
            self.connect()
        sent = self._catch_up() if self.horizon is None else 0
        deadline = time.monotonic() + timeout_s
        while True:
            # With ids owed to Redis, poll at once: the caller paces the retries.
            wait_s = 0.0 if self.pending else self.next_poll - time.monotonic()
            if wait_s > deadline - time.monotonic():
                time.sleep(max(0.0, deadline - time.monotonic()))
                break
            if wait_s > 0:
                time.sleep(wait_s)
            found = self._poll()
            self.pause_s = POLL_S if found else min(IDLE_POLL_S, self.pause_s * 2)
            self.next_poll = time.monotonic() + self.pause_s
            if self.pending or time.monotonic() >= deadline:
                break
        if len(self.pending) > PENDING_MAX:
            self.pending.clear()
            self.recent.clear()
            self.horizon = None
        return sent + self._send_pending()

    def run(self, stop: Event, burst: bool = False) -> None:
        """Dispatch until `stop` is set (or, with `burst`, until nothing more arrives)."""
        backoff = 0.0
        while not stop.is_set():
            if backoff:
                stop.wait(backoff)
            try:
                sent = self.dispatch_once(timeout_s=0.2 if burst else 1.0)
                backoff = 0.0
                if burst and not sent and not self.pending:
                    break
            except RedisError:
                backoff = min(BACKOFF_MAX_S, backoff * 2 or 0.2)
                log.warning(
                    "Redis unreachable: %d job(s) pending, retrying in %.1f s",
                    len(self.pending), backoff,
                )
            except (psycopg.Error, DBAPIError) as exc:  # its own connection, or the catch-up's
                backoff = min(BACKOFF_MAX_S, backoff * 2 or 0.2)
                log.warning("PostgreSQL connection lost (%s); reconnecting", type(exc).__name__)
                self.close()
        self.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="stop once nothing more arrives")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from stopapp.extensions import redis_client
    from workers.context import worker_app

    app = worker_app()
    with app.app_context():
        redis = redis_client()
    stop = Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    started = time.monotonic()
    Dispatcher(app, redis).run(stop, burst=args.burst)
    log.info("dispatcher stopped after %.0f s", time.monotonic() - started)


if __name__ == "__main__":
    main()
