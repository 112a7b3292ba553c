"""The unit of work: one transaction per request or job, committed at the edge."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from weakref import WeakKeyDictionary, finalize

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row
from sqlalchemy import URL, Engine, event, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session

from stopapp.extensions import db

# Set inside unit_of_work(single_statement=True) when the statement may run in autocommit.
_autocommit_engine: ContextVar[Engine | None] = ContextVar("autocommit_engine", default=None)
# A pooled connection idle for longer than this is pinged before use (see ping_when_idle).
PING_AFTER_IDLE_S = 5.0


@contextmanager
def unit_of_work(*, single_statement: bool = False) -> Iterator[Session]:
    """Commit what the block did, or roll all of it back if it raised.

    `single_statement=True` is for a block whose only write is one statement, sent with
    `one_statement` (intake): a statement is atomic on its own, so it runs in autocommit on a
    connection kept for single statements, committed when it returns, which saves the BEGIN
    and COMMIT round trips and the session's bookkeeping. Where the session is bound to a
    connection already in a transaction (the tests' rolled-back one), it is an ordinary unit of
    work.
    """
    engine = _unbound_engine() if single_statement else None
    if engine is not None:
        # No Session is built for the statement (its construction and teardown were about a
        # twentieth of a submission's CPU); one made meanwhile (a fallback query) is ended
        # here as any unit of work's would be.
        token = _autocommit_engine.set(engine)
        try:
            yield db.session
            if db.session.registry.has() and db.session().in_transaction():
                db.session().commit()
        except BaseException:
            if db.session.registry.has():
                db.session().rollback()
            raise
        finally:
            _autocommit_engine.reset(token)
        return
    session = db.session()
    bind = session.get_bind() if single_statement else None
    autocommit = isinstance(bind, Engine)
    token = _autocommit_engine.set(bind if autocommit else None)
    try:
        yield session
        # Committing a session that did nothing still builds and ends a transaction object.
        if not autocommit or session.in_transaction():
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        _autocommit_engine.reset(token)


def _unbound_engine() -> Engine | None:
    """The app's engine when this request has no session yet and sessions bind to it (the
    app's own configuration); None where a session exists or is bound elsewhere (the tests
    bind it to a connection in a transaction), which then take the ordinary path."""
    scoped = db.session
    if scoped.registry.has():
        return None
    factory = scoped.session_factory
    if factory.kw.get("bind") is not None or factory.kw.get("binds"):
        return None
    return db.engine


def libpq_dsn(database_url: str | URL) -> str:
    """The SQLAlchemy URL of the app as a plain libpq connection string."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


class _StatementConnections:
    """The single statements' own autocommit connections to one engine's database, per process.

    Checking a connection out of SQLAlchemy's pool and back in (its events, the reset on
    return) and switching it to autocommit and back cost about a twelfth of a report
    submission's CPU in the web process (measured in one process, alternating the two ways).
    These connections stay in autocommit, and a request thread takes the last one put back
    (LIFO, so a quiet process keeps using the same few). There are never more than the
    process's concurrent single statements (its request threads); they come on top of the
    pool's, which the other requests use. The pool's rules are kept: a connection idle for
    PING_AFTER_IDLE_S or more is pinged first, and a lost connection discards every idle one
    (SQLAlchemy discards its whole pool on a disconnect too).
    """

    def __init__(self, engine: Engine) -> None:
        # Not the engine itself: it is the key of a weak mapping to this object.
        self.ping = engine.dialect.do_ping
        self.dsn = libpq_dsn(engine.url)
        self.idle: list[tuple[psycopg.Connection, float]] = []
        self.pid = os.getpid()

    def take(self) -> psycopg.Connection:
        if self.pid != os.getpid():  # a forked child must not share its parent's sockets
            self.idle, self.pid = [], os.getpid()
        while True:
            try:
                conn, idle_since = self.idle.pop()  # atomic: one thread gets each connection
            except IndexError:
                return psycopg.connect(self.dsn, autocommit=True)
            if time.monotonic() - idle_since < PING_AFTER_IDLE_S:
                return conn
            try:
                self.ping(conn)
            except psycopg.Error:
                conn.close()
                continue
            return conn

    def put_back(self, conn: psycopg.Connection) -> None:
        if conn.closed or conn.broken:
            self.discard_idle()
        elif conn.info.transaction_status != TransactionStatus.IDLE:
            conn.close()  # left mid-statement (an exception that was not psycopg's)
        else:
            self.idle.append((conn, time.monotonic()))

    def discard_idle(self) -> None:
        while self.idle:
            try:
                conn, _ = self.idle.pop()
            except IndexError:
                break
            conn.close()


_statement_connections: WeakKeyDictionary[Engine, _StatementConnections] = WeakKeyDictionary()


def _connections_for(engine: Engine) -> _StatementConnections:
    try:
        return _statement_connections[engine]
    except KeyError:
        connections = _statement_connections.setdefault(engine, _StatementConnections(engine))
        # Closed with the engine: by its dispose(), or when it is dropped without one.
        event.listen(engine, "engine_disposed", lambda _engine: connections.discard_idle())
        finalize(engine, connections.discard_idle)
        return connections


def one_statement(sql: str, params: Mapping[str, object]) -> list:
    """The rows of one SQL statement (psycopg's %(name)s parameters; none for a statement
    without RETURNING), sent as it is.

    Inside unit_of_work(single_statement=True) it runs in autocommit on a connection kept for
    single statements (see _StatementConnections), committed when this returns; anywhere else
    in the unit of work's transaction. Errors leave as SQLAlchemy's DBAPIError
    (OperationalError when the server is gone, which the API answers 503), without the
    statement's values.
    """
    engine = _autocommit_engine.get()
    if engine is None:
        result = db.session.connection().exec_driver_sql(sql, params)
        return result.all() if result.returns_rows else []
    connections = _connections_for(engine)
    conn = None
    try:
        conn = connections.take()
        with conn.cursor(row_factory=namedtuple_row) as cursor:
            cursor.execute(sql, params)
            # rownumber is None when there is no result set to fetch: the same test as
            # `description is not None`, without building a Column for each field.
            return cursor.fetchall() if cursor.rownumber is not None else []
    except psycopg.Error as exc:
        raise DBAPIError.instance(
            sql, params, exc, psycopg.Error, hide_parameters=True,
            connection_invalidated=conn is None or conn.broken, dialect=engine.dialect,
        ) from exc
    finally:
        if conn is not None:
            connections.put_back(conn)


def ping_when_idle(engine: Engine, idle_s: float = PING_AFTER_IDLE_S) -> None:
    """Check a pooled connection before use only when it sat idle for `idle_s` or more.

    SQLAlchemy's pool_pre_ping costs a round trip on every checkout, which under load is a
    quarter of a report submission's round trips. A connection that was in use moments ago is
    almost certainly alive; one that idled may have been dropped (a restart, a proxy's idle
    timeout), and raising DisconnectionError makes the pool replace it. A server lost between
    two busy requests fails that one request (503, the client retries) and SQLAlchemy then
    discards the whole pool, as it does for any disconnect.
    """

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _fresh(_dbapi_connection, record) -> None:  # noqa: ANN001 - pool callback
        if record is not None:
            record.info["stopapp.idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:  # noqa: ANN001
        idle_since = record.info.get("stopapp.idle_since")
        if idle_since is not None and time.monotonic() - idle_since < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("connection lost while idle") from exc
