"""The one-statement unit of work (autocommit on a connection kept for single statements) and
the pool's ping of idle connections (stopapp/db.py)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from stopapp.db import libpq_dsn, one_statement, ping_when_idle, unit_of_work
from stopapp.extensions import db
from tests.conftest import DATABASE_URL, new_key, submit
from tests.helpers import assert_problem

SCRATCH = "CREATE TABLE IF NOT EXISTS uow_scratch (n int)"


@pytest.fixture
def scratch_app(committed_app):
    with committed_app.app_context():
        db.session.execute(text(SCRATCH))
        db.session.commit()
    yield committed_app
    with committed_app.app_context():
        db.session.execute(text("DROP TABLE uow_scratch"))
        db.session.commit()


def _count(app) -> int:
    with app.app_context():
        try:
            return db.session.scalar(text("SELECT count(*) FROM uow_scratch"))
        finally:
            db.session.rollback()


def test_the_single_statement_is_committed_when_it_returns(scratch_app):
    with scratch_app.app_context(), pytest.raises(RuntimeError):
        with unit_of_work(single_statement=True):
            rows = one_statement("INSERT INTO uow_scratch VALUES (%(n)s) RETURNING n", {"n": 7})
            assert [row.n for row in rows] == [7]
            raise RuntimeError("after the statement")
    # Autocommitted: nothing left for the unit of work to roll back.
    assert _count(scratch_app) == 1


def test_no_session_is_built_for_the_statement_and_one_made_meanwhile_is_ended(scratch_app):
    with scratch_app.app_context():
        with unit_of_work(single_statement=True):
            one_statement("INSERT INTO uow_scratch VALUES (%(n)s)", {"n": 1})
            assert not db.session.registry.has()
            # What the intake's fallback does (a SELECT through the session): committed too.
            db.session.execute(text("INSERT INTO uow_scratch VALUES (2)"))
    assert _count(scratch_app) == 2
    with scratch_app.app_context(), pytest.raises(RuntimeError):
        with unit_of_work(single_statement=True):
            db.session.execute(text("INSERT INTO uow_scratch VALUES (3)"))
            raise RuntimeError("rolled back")
    assert _count(scratch_app) == 2


def test_without_single_statement_it_runs_in_the_unit_of_work(scratch_app):
    with scratch_app.app_context(), pytest.raises(RuntimeError):
        with unit_of_work():
            one_statement("INSERT INTO uow_scratch VALUES (%(n)s)", {"n": 7})
            raise RuntimeError("rolled back")
    assert _count(scratch_app) == 0


def test_a_failing_statement_leaves_as_sqlalchemy_error_without_its_values(scratch_app):
    with scratch_app.app_context(), pytest.raises(DBAPIError) as raised:
        with unit_of_work(single_statement=True):
            one_statement("SELECT 1 / %(zero)s::int, %(secret)s::text",
                          {"zero": 0, "secret": "call me on 07700 900123"})
    assert "07700" not in str(raised.value)
    # The pooled connection is usable again afterwards (back in its normal mode).
    with scratch_app.app_context(), unit_of_work(single_statement=True):
        assert one_statement("SELECT 1 AS one", {})[0].one == 1
    with scratch_app.app_context(), unit_of_work():
        assert db.session.connection().connection.driver_connection.autocommit is False


def test_idle_connections_are_pinged_and_replaced_when_dead(migrated_database, monkeypatch):
    engine = create_engine(DATABASE_URL, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_s=0.2)
    pings = []
    real_ping = engine.dialect.do_ping

    def ping(dbapi_connection):
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", ping)
    try:
        with engine.connect() as conn:
            first = conn.connection.driver_connection
        with engine.connect() as conn:  # used a moment ago: not pinged
            assert conn.connection.driver_connection is first
        assert pings == []
        time.sleep(0.3)
        with engine.connect() as conn:  # idle: pinged, alive, kept
            assert conn.connection.driver_connection is first
        assert pings == [first]

        def dead(dbapi_connection):
            raise psycopg.OperationalError("server closed the connection")

        monkeypatch.setattr(engine.dialect, "do_ping", dead)
        time.sleep(0.3)
        with engine.connect() as conn:  # idle and dead: replaced by a fresh connection
            assert conn.connection.driver_connection is not first
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()


def _session_backend(app) -> int:
    with app.app_context(), unit_of_work():
        return db.session.scalar(text("SELECT pg_backend_pid() FROM pg_sleep(0.05)"))


def _statement_backend(app) -> int:
    with app.app_context(), unit_of_work(single_statement=True):
        return one_statement("SELECT pg_backend_pid() AS pid, pg_sleep(0.05)", {})[0].pid


@pytest.mark.parametrize("backend", [_session_backend, _statement_backend],
                         ids=["sessions, from the pool", "single statements, kept apart"])
def test_a_burst_of_request_threads_keeps_its_connections(committed_app, backend):
    """As many concurrent request threads as a web worker may run (WEB_THREADS up to the pool
    size) reuse the same server connections burst after burst: a checkout beyond the pool
    would open a connection and close it again after that one use."""
    threads = int(committed_app.extensions["stopapp.config"].DATABASE_POOL_SIZE)
    assert threads >= 8
    started = threading.Barrier(threads)

    def burst() -> set[int]:
        def run(_: int) -> int:
            started.wait(timeout=10)  # all at once, not one after another
            return backend(committed_app)

        with ThreadPoolExecutor(threads) as pool:
            return set(pool.map(run, range(threads)))

    first = burst()
    assert len(first) == threads
    assert burst() == first


def _alive(pid: int) -> bool:
    with psycopg.connect(libpq_dsn(DATABASE_URL), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                            (pid,)).fetchone()[0] == 1


def _terminate(pid: int) -> None:
    """What a server restart or a proxy's idle timeout does to one connection."""
    with psycopg.connect(libpq_dsn(DATABASE_URL), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def test_single_statements_have_autocommit_connections_apart_from_the_pool(committed_app):
    pid = _statement_backend(committed_app)
    assert _statement_backend(committed_app) == pid  # put back and taken again
    with committed_app.app_context(), unit_of_work():
        session_conn = db.session.connection().connection.driver_connection
        assert session_conn.autocommit is False
        assert session_conn.info.backend_pid != pid
    with committed_app.app_context():
        db.engine.dispose()  # closes them with the pool's
    assert not _alive(pid)


def test_a_connection_lost_in_use_fails_one_submission_with_503_and_is_replaced(committed_app):
    pid = _statement_backend(committed_app)
    _terminate(pid)
    client = committed_app.test_client()
    key = new_key()
    # Used a moment ago, so not pinged: the submission meets the closed connection.
    first = submit(client, key=key)
    assert_problem(first, 503)
    assert first.headers["Retry-After"]
    # The phone's retry is stored, once, on a new connection.
    assert submit(client, key=key).status_code == 201
    with committed_app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM reports")) == 1
    fresh = _statement_backend(committed_app)
    assert fresh != pid


def test_a_connection_lost_while_idle_is_pinged_and_replaced(committed_app, monkeypatch):
    pid = _statement_backend(committed_app)
    monkeypatch.setattr("stopapp.db.PING_AFTER_IDLE_S", 0.2)
    _terminate(pid)
    time.sleep(0.3)
    fresh = _statement_backend(committed_app)  # no error: the ping found it dead
    assert fresh != pid
