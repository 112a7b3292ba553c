"""Nothing is lost or stored twice: concurrency, Redis outages, the reconciler, real workers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

from rq import Queue
from sqlalchemy import update

from stopapp.extensions import db
from stopapp.models import Report
from stopapp.reports.services import triage_jobs
from stopapp.review.enrichment import photo_matches_job
from stopapp.tasks import send_jobs
from tests.conftest import DEAD_REDIS_URL, REDIS_URL, ROOT, VALID_REPORT, new_key, submit
from tests.helpers import counts
from workers import jobs
from workers.dispatcher import Dispatcher


def run_worker_burst(database_url: str, timeout_s: int = 120) -> subprocess.CompletedProcess:
    """A real RQ worker process that works the queues until they are empty, then exits."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}
    return subprocess.run(
        [sys.executable, "-m", "workers.worker", "--burst"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=True,
    )


def run_dispatcher_burst(database_url: str) -> subprocess.CompletedProcess:
    """A real dispatcher process that queues what is owed, then exits."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}
    return subprocess.run(
        [sys.executable, "-m", "workers.dispatcher", "--burst"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )


def report_state(app, report_id: str) -> str:
    with app.app_context():
        db.session.expire_all()
        return db.session.get(Report, uuid.UUID(report_id)).state


def test_twenty_concurrent_requests_with_one_key_make_one_report(committed_app, redis_conn):
    dispatcher = Dispatcher(committed_app, redis_conn)
    dispatcher.connect()
    dispatcher.dispatch_once(timeout_s=0)
    key = new_key()
    barrier = threading.Barrier(20)
    answers = []

    def post():
        with committed_app.test_client() as client:
            barrier.wait()
            response = submit(client, key=key)
            answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=post) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 20
    assert {status for status, _ in answers} == {201}
    assert len({(body["id"], body["receipt"]) for _, body in answers}) == 1
    with committed_app.app_context():
        assert counts()["reports"] == 1
    assert dispatcher.dispatch_once(timeout_s=1) == 1
    dispatcher.close()
    assert redis_conn.llen("rq:queue:triage") == 1


def test_report_is_accepted_while_redis_is_down(make_app, committed_app, redis_conn):
    app_without_redis = make_app(REDIS_URL=DEAD_REDIS_URL)
    response = submit(app_without_redis.test_client())
    assert response.status_code == 201
    assert report_state(committed_app, response.get_json()["id"]) == "received"
    assert redis_conn.llen("rq:queue:triage") == 0


def test_reconciler_queues_reports_that_missed_their_job(make_app, committed_app, redis_conn):
    report_id = submit(make_app(REDIS_URL=DEAD_REDIS_URL).test_client()).get_json()["id"]
    with committed_app.app_context():
        # Old enough for the reconciler's grace period.
        db.session.execute(
            update(Report).values(created_at=db.func.now() - db.text("interval '10 minutes'"))
        )
        db.session.commit()
        assert jobs.reconcile() == 1
        assert jobs.reconcile() == 0  # the job is queued already: not sent twice
    assert Queue("triage", connection=redis_conn).job_ids == [f"triage-report-{report_id}"]


def test_reconciler_batches_what_waited_but_not_what_a_live_batch_holds(
    make_app, committed_app, redis_conn
):
    client = make_app(REDIS_URL=DEAD_REDIS_URL).test_client()
    ids = [submit(client).get_json()["id"] for _ in range(4)]
    send_jobs(redis_conn, triage_jobs([uuid.UUID(i) for i in ids[:2]]))  # queued, not yet run
    # A photo-matches job shares the queue and names a report, but does not triage it.
    send_jobs(redis_conn, [photo_matches_job(uuid.UUID(ids[2]))])
    with committed_app.app_context():
        db.session.execute(
            update(Report).values(created_at=db.func.now() - db.text("interval '10 minutes'"))
        )
        db.session.commit()
        assert jobs.reconcile() == 1  # one job for the other two
        assert jobs.reconcile() == 0
    queued = [sorted(job.args[0]) for job in Queue("triage", connection=redis_conn).jobs
              if job.func_name == "workers.jobs.triage_reports"]
    assert queued == [sorted(ids[:2]), sorted(ids[2:])]


def test_reconciler_leaves_fresh_reports_to_their_own_job(committed_app, redis_conn):
    submit(committed_app.test_client())
    redis_conn.flushdb()  # the job is lost, but the report is younger than the grace period
    with committed_app.app_context():
        assert jobs.reconcile() == 0


def test_triage_job_moves_report_into_the_queue_with_priority(app, client):
    body = submit(client, {**VALID_REPORT, "exploitation_types": ["child"]}).get_json()
    with app.app_context():
        assert jobs.triage_report(body["id"]) is True
        assert jobs.triage_report(body["id"]) is False  # running twice does no harm
        report = db.session.get(Report, uuid.UUID(body["id"]))
        assert report.state == "new" and "minors" in report.priority_reasons
        assert report.priority >= 45  # the base and the points for minors at least


def test_real_worker_process_runs_the_triage_job(committed_app, migrated_database, redis_conn):
    client = committed_app.test_client()
    ids = [submit(client).get_json()["id"] for _ in range(3)]
    run_dispatcher_burst(migrated_database)
    [batch] = Queue("triage", connection=redis_conn).jobs  # three reports, one job
    assert sorted(batch.args[0]) == sorted(ids)
    run_worker_burst(migrated_database)
    assert {report_state(committed_app, i) for i in ids} == {"new"}


def test_outage_end_to_end_report_reaches_the_queue_once_redis_is_back(
    make_app, committed_app, migrated_database
):
    report_id = submit(make_app(REDIS_URL=DEAD_REDIS_URL).test_client()).get_json()["id"]
    short_grace = make_app(RECONCILE_AFTER_S=0)
    with short_grace.app_context():
        assert jobs.reconcile() == 1
    run_worker_burst(migrated_database)
    assert report_state(committed_app, report_id) == "new"
