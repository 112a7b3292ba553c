"""The dispatcher: new reports reach the triage queue from the committed rows, in batches,
through Redis outages, transactions that commit late, and restarts of the dispatcher itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import text

from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.reports.services import (
    TRIAGE_BATCH_MAX,
    submit_report,
    triage_job_reports,
    untriaged_reports,
)
from tests.conftest import DEAD_REDIS_URL, REDIS_URL, ROOT, VALID_REPORT, new_key, submit
from workers.dispatcher import APPLICATION_NAME, IDLE_POLL_S, MARGIN_S, Dispatcher


def queued_reports(redis_conn: Redis) -> list[str]:
    """The report ids named by the triage queue's jobs, sorted, repeats kept."""
    return sorted(report_id for job in Queue("triage", connection=redis_conn).jobs
                  for report_id in triage_job_reports(job))


def wait_for(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def dispatcher(committed_app, redis_conn) -> Iterator[Dispatcher]:
    """A dispatcher in this process, connected, its start-up catch-up done."""
    dispatcher = Dispatcher(committed_app, redis_conn)
    dispatcher.connect()
    dispatcher.dispatch_once(timeout_s=0)
    yield dispatcher
    dispatcher.close()


def connected(app) -> bool:
    """Whether a dispatcher is connected to the database (it names its connection)."""
    with app.app_context():
        return bool(db.session.scalar(text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = :name"
        ), {"name": APPLICATION_NAME}))


@pytest.fixture
def dispatcher_process(committed_app, migrated_database):
    """Starts `python -m workers.dispatcher` (as `make run` does); returns a start function."""
    processes: list[subprocess.Popen] = []
    env = {**os.environ, "DATABASE_URL": migrated_database, "REDIS_URL": REDIS_URL}

    def start() -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.dispatcher"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        wait_for(lambda: connected(committed_app))
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def test_a_committed_report_is_queued(committed_app, redis_conn, dispatcher_process):
    dispatcher_process()
    body = submit(committed_app.test_client()).get_json()
    job_id = f"triage-report-{body['id']}"  # a report alone: its own job, named after it
    wait_for(lambda: Queue("triage", connection=redis_conn).job_ids == [job_id])
    job = Queue("triage", connection=redis_conn).fetch_job(job_id)
    assert job.args == (body["id"],)
    time.sleep(0.5)
    assert queued_reports(redis_conn) == [body["id"]]  # once


def test_a_retry_queues_no_second_job(committed_app, redis_conn, dispatcher):
    client = committed_app.test_client()
    key = new_key()
    first = submit(client, key=key).get_json()
    assert submit(client, key=key).get_json() == first
    assert dispatcher.dispatch_once(timeout_s=1) == 1
    assert dispatcher.dispatch_once(timeout_s=0.3) == 0
    assert queued_reports(redis_conn) == [first["id"]]


def test_a_rolled_back_report_queues_nothing(committed_app, redis_conn, dispatcher):
    with committed_app.app_context():
        submit_report(dict(VALID_REPORT), uuid.uuid4())
        db.session.rollback()
    assert dispatcher.dispatch_once(timeout_s=0.5) == 0
    assert queued_reports(redis_conn) == []


def test_reports_committed_together_go_out_in_one_batch(committed_app, redis_conn, dispatcher):
    with committed_app.app_context(), unit_of_work():
        ids = [submit_report(dict(VALID_REPORT), uuid.uuid4()).report_id for _ in range(30)]
    # One call: one pipeline to Redis for all thirty, in jobs of up to TRIAGE_BATCH_MAX.
    assert dispatcher.dispatch_once(timeout_s=1) == 30
    assert queued_reports(redis_conn) == sorted(str(i) for i in ids)
    sizes = sorted(len(job.args[0]) for job in Queue("triage", connection=redis_conn).jobs)
    assert sizes == [30 - TRIAGE_BATCH_MAX, TRIAGE_BATCH_MAX]


def test_a_transaction_open_across_a_poll_is_queued_once_it_commits(committed_app, redis_conn,
                                                                    dispatcher):
    # Its created_at is the transaction's start, older than the poll that could not see it:
    # the horizon waits for transactions open at the time of a poll.
    with committed_app.app_context():
        report_id = submit_report(dict(VALID_REPORT), uuid.uuid4()).report_id  # not committed
        time.sleep(4 * MARGIN_S)
        assert dispatcher.dispatch_once(timeout_s=0.3) == 0
        time.sleep(4 * MARGIN_S)
        db.session.commit()
    assert dispatcher.dispatch_once(timeout_s=1) == 1
    assert queued_reports(redis_conn) == [str(report_id)]


def test_a_transaction_open_past_the_lag_limit_is_left_to_the_reconciler(
    committed_app, redis_conn, dispatcher, monkeypatch
):
    monkeypatch.setattr("workers.dispatcher.MAX_LAG_S", 0.3)
    with committed_app.app_context():
        report_id = submit_report(dict(VALID_REPORT), uuid.uuid4()).report_id
        time.sleep(0.5)
        assert dispatcher.dispatch_once(timeout_s=0.2) == 0
        db.session.commit()
    assert dispatcher.dispatch_once(timeout_s=0.5) == 0  # the polls have moved past it
    with committed_app.app_context(), unit_of_work():
        assert untriaged_reports(redis_conn, timedelta(0)) == [report_id]  # the reconciler's


def test_an_idle_dispatcher_polls_a_few_times_a_second(dispatcher, monkeypatch):
    polls = []
    poll = dispatcher._poll
    monkeypatch.setattr(dispatcher, "_poll", lambda: polls.append(1) or poll())
    assert dispatcher.dispatch_once(timeout_s=2) == 0
    assert len(polls) <= 2 / IDLE_POLL_S + 3


def test_jobs_wait_out_a_redis_outage(committed_app, redis_conn, dispatcher):
    # A real outage: nothing listens on the dead address.
    dispatcher.redis = Redis.from_url(DEAD_REDIS_URL)
    client = committed_app.test_client()
    created = [submit(client).get_json()["id"] for _ in range(3)]
    deadline = time.monotonic() + 10
    while len(dispatcher.pending) < 3:  # the reports may come in more than one poll
        assert time.monotonic() < deadline
        with pytest.raises(RedisError):
            dispatcher.dispatch_once(timeout_s=1)
    assert sorted(dispatcher.pending) == sorted(uuid.UUID(i) for i in created)
    dispatcher.redis = redis_conn  # Redis is back
    assert dispatcher.dispatch_once(timeout_s=0) == 3
    assert queued_reports(redis_conn) == sorted(created)


def test_a_restarted_dispatcher_queues_what_came_while_it_was_down(
    committed_app, redis_conn, dispatcher_process
):
    process = dispatcher_process()
    client = committed_app.test_client()
    before = submit(client).get_json()["id"]
    wait_for(lambda: queued_reports(redis_conn) == [before])
    os.kill(process.pid, signal.SIGKILL)  # a crash: no clean-up of any kind
    process.wait(timeout=10)
    wait_for(lambda: not connected(committed_app))
    during = [submit(client).get_json()["id"] for _ in range(2)]
    assert queued_reports(redis_conn) == [before]  # nobody was polling
    dispatcher_process()
    expected = sorted([before, *during])
    wait_for(lambda: queued_reports(redis_conn) == expected)
    time.sleep(0.5)
    assert queued_reports(redis_conn) == expected  # the first report was not queued again
