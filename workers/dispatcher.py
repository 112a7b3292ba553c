"""The dispatcher: queues the triage job of every new report, woken by PostgreSQL NOTIFY.

`python -m workers.dispatcher [--burst]`; one is enough (two would only queue some jobs twice,
which the jobs tolerate).

This is a transactional outbox. The committed report row is the durable record of the work:
the INSERT's transaction sends NOTIFY (the trigger of migration i9_intake), which PostgreSQL
delivers only once it has committed. The dispatcher LISTENs, gathers the ids that arrive
together, and queues their jobs through one Redis pipeline, so the web request never talks to
Redis for its job and a burst of reports costs one round trip. Nothing is lost when a link
fails:

- Redis down: the ids stay pending here and are sent once Redis answers again.
- The dispatcher down, or its PostgreSQL connection lost (notifications are not stored for a
  listener that is not there): when it (re)connects it queues every report still `received`
  whose job is not live in Redis, then follows the notifications again.
- Anything else: the reconciler (workers/jobs.py, run by `rq cron`) re-queues reports still
  `received` after RECONCILE_AFTER_S.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
import uuid
from collections import OrderedDict
from datetime import timedelta
from threading import Event

import psycopg
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError

from stopapp.db import unit_of_work
from stopapp.reports.services import triage_jobs, untriaged_reports
from stopapp.tasks import send_jobs

log = logging.getLogger(__name__)

CHANNEL = "report_received"
# A batch is what arrives within LINGER_S of its first id, at most BATCH_MAX ids: a few
# milliseconds of latency buy one Redis round trip for a whole burst, and jobs of up to
# TRIAGE_BATCH_MAX reports each (stopapp/reports/services.py). Queueing an RQ job costs about
# 0.2 ms of CPU in a batch, so under load 20 ms of gathering (6 to 12 reports at 300 to 600
# reports/s) saves more CPU than 5 ms did, for 15 ms more latency against the 2 s target.
BATCH_MAX = 500
LINGER_S = 0.02
# Ids already sent, remembered so that one found by the catch-up and notified too is sent once.
RECENT_MAX = 10_000
# Ids kept while Redis is down; past this the database is the list (catch-up once it is back).
PENDING_MAX = 100_000
CATCH_UP_LIMIT = 10_000
BACKOFF_MAX_S = 5.0


def libpq_dsn(database_url: str) -> str:
    """The SQLAlchemy URL of the app as a plain libpq connection string."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


class Dispatcher:
    """LISTEN for new reports and queue their triage jobs in batches.

    `app` gives the database (for the catch-up query) and settings; `redis` is where jobs go.
    """

    def __init__(self, app, redis: Redis) -> None:  # noqa: ANN001 - a Flask app
        self.app = app
        self.redis = redis
        self.pending: list[uuid.UUID] = []
        self.recent: OrderedDict[uuid.UUID, None] = OrderedDict()
        self.needs_catch_up = True
        self.conn: psycopg.Connection | None = None

    # -- the PostgreSQL side -----------------------------------------------------------------

    def connect(self) -> None:
        """LISTEN on a fresh connection; what was committed before is found by the catch-up."""
        self.close()
        self.conn = psycopg.connect(
            libpq_dsn(self.app.extensions["stopapp.config"].DATABASE_URL), autocommit=True
        )
        self.conn.execute(f"LISTEN {CHANNEL}")
        self.needs_catch_up = True

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _receive(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for a notification, then take what came within LINGER_S.

        The linger is a sleep, not a wait on the socket: notifications arriving meanwhile
        gather in the socket's buffer and are read in one go, instead of waking this process
        once each (which cost more CPU than queueing their jobs).
        """
        assert self.conn is not None
        got = 0
        for first in self.conn.notifies(timeout=timeout_s, stop_after=1):
            self._add(first.payload)
            got = 1
        if got:
            time.sleep(LINGER_S)
        for more in self.conn.notifies(timeout=0, stop_after=BATCH_MAX):
            self._add(more.payload)

    def _add(self, payload: str) -> None:
        try:
            report_id = uuid.UUID(payload)
        except ValueError:
            log.warning("ignored a malformed notification on %s", CHANNEL)
            return
        if report_id not in self.recent:
            self.pending.append(report_id)

    # -- the Redis side ------------------------------------------------------------------------

    def _catch_up(self) -> int:
        """Queue the triage of every report still `received` that no live job will triage."""
        with self.app.app_context(), unit_of_work():
            caught_up = untriaged_reports(self.redis, timedelta(0), limit=CATCH_UP_LIMIT)
        send_jobs(self.redis, triage_jobs(caught_up))
        for report_id in caught_up:
            self._remember(report_id)
        self.needs_catch_up = False
        if caught_up:
            log.info("dispatcher caught up: queued %d report(s)", len(caught_up))
        return len(caught_up)

    def _send_pending(self) -> int:
        sent = 0
        while self.pending:
            batch, rest = self.pending[:BATCH_MAX], self.pending[BATCH_MAX:]
            send_jobs(self.redis, triage_jobs(list(dict.fromkeys(batch))))
            self.pending = rest
            for report_id in batch:
                self._remember(report_id)
            sent += len(batch)
        return sent

    def _remember(self, report_id: uuid.UUID) -> None:
        self.recent[report_id] = None
        if len(self.recent) > RECENT_MAX:
            self.recent.popitem(last=False)

    # -- the loop ----------------------------------------------------------------------------

    def dispatch_once(self, timeout_s: float = 1.0) -> int:
        """Wait up to `timeout_s` for new reports and queue what arrived (and what is owed).

        Returns how many reports were queued (in jobs of up to TRIAGE_BATCH_MAX reports).
        Raises RedisError (the ids stay pending), and psycopg.Error or DBAPIError (call
        connect() again: the catch-up then covers the gap).
        """
        if self.conn is None:
            self.connect()
        sent = self._catch_up() if self.needs_catch_up else 0
        # With ids owed to Redis, do not sleep on the socket: retry them now (the caller
        # paces the retries).
        self._receive(0 if self.pending else timeout_s)
        if len(self.pending) > PENDING_MAX:
            self.pending.clear()
            self.needs_catch_up = True
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
