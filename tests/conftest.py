"""Test fixtures on the real services: PostGIS, Redis, and (where a test asks) an RQ worker.

The test database is dropped and rebuilt by running the migrations once per session; each test
runs inside a transaction that is rolled back at its end; the test Redis database is flushed
before each test. Tests that need data committed for real (concurrency, worker processes) use
the `committed_app` fixture, which truncates the tables after them.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from redis import Redis
from sqlalchemy import text
from sqlalchemy.orm import scoped_session, sessionmaker

from stopapp import create_app
from stopapp.dbadmin import recreate_database
from stopapp.extensions import db

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("STOPAPP_TESTDATA", ROOT / "tests" / "data"))
DATABASE_URL = os.environ.get(
    "STOPAPP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/stopapp_test"
)
REDIS_URL = os.environ.get("STOPAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Nothing listens here: connecting fails at once, a real outage without a mock.
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"
DEAD_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:1/stopapp_test"
# Truncated (with CASCADE) after tests that commit. audit_events is append-only by trigger, so
# tests that commit must find their own events by id rather than count the whole table.
TABLES = (
    "photos", "report_messages", "report_notes", "report_links", "reports", "api_tokens", "users",
    "areas", "forwards", "authorities",
)


# Kept under this name for the scripts that build on the test fixtures (bench/).
_recreate_database = recreate_database


def test_settings(tmp_path: Path, **overrides) -> dict:
    """Settings for a test app: the test database and Redis, media under `tmp_path`."""
    settings = {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "MEDIA_ROOT": str(tmp_path / "media"),
        # Generous limits: the rate-limit tests set their own.
        "RATELIMIT_REPORTS": "1000/minute",
        "RATELIMIT_PHOTOS": "1000/minute",
        "RATELIMIT_READS": "1000/minute",
        "RATELIMIT_RECEIPT_FAILURES": "1000/minute",
        # Cheap password hashing: argon2id all the same, at a fraction of the production cost.
        "PASSWORD_TIME_COST": 1,
        "PASSWORD_MEMORY_KIB": 1024,
        "TESTING": True,
    }
    settings.update(overrides)
    return settings


test_settings.__test__ = False  # a helper, not a test


@pytest.fixture(scope="session")
def migrated_database() -> str:
    """The test database, rebuilt once per session by running every migration."""
    recreate_database(DATABASE_URL)
    app = create_app({"DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return DATABASE_URL


@pytest.fixture
def redis_conn() -> Redis:
    """The test Redis database, empty at the start of each test."""
    conn = Redis.from_url(REDIS_URL)
    conn.flushdb()
    yield conn
    conn.close()


@pytest.fixture
def make_app(migrated_database, redis_conn, tmp_path):
    """Build apps on the test services with some settings overridden.

    These apps commit for real; the tables are truncated after the test.
    """
    apps = []

    def build(**overrides):
        app = create_app(test_settings(tmp_path, **overrides))
        apps.append(app)
        return app

    yield build
    cleanup = create_app(test_settings(tmp_path))
    with cleanup.app_context():
        db.session.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
        db.session.commit()
        db.engine.dispose()
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def _rolled_back(app):
    """Run the test in a transaction rolled back at the end; sessions nest in savepoints."""
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        # A plain Session: Flask-SQLAlchemy's own picks the engine per table and would bypass
        # the connection that holds the outer transaction.
        db.session = scoped_session(
            sessionmaker(bind=connection, join_transaction_mode="create_savepoint"),
            scopefunc=_app_ctx_id,
        )
        try:
            yield app
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()


@pytest.fixture
def app(make_app):
    """The app, with everything the test writes rolled back."""
    yield from _rolled_back(make_app())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def committed_app(make_app):
    """The app with real commits, for tests that cross connections or processes."""
    return make_app()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def testdata() -> Path:
    """tests/data in the repository (STOPAPP_TESTDATA overrides)."""
    assert TESTDATA.is_dir(), f"test data not found at {TESTDATA}"
    return TESTDATA


def new_key() -> str:
    return str(uuid.uuid4())


VALID_REPORT = {
    "description": "Workers sleep in the back of the car wash and are driven away at night.",
    "exploitation_types": ["labour"],
    "location": {"lat": 51.4927, "lon": -0.2240, "accuracy_m": 20, "source": "gps"},
    "place": "Car wash behind the station, King Street",
    "occurred_at": "2026-11-20T14:05:00Z",
    "occurred_precision": "exact",
    "ongoing": False,
    "people": {"victims": 3, "minors": False, "suspects": 1, "description": "young men"},
    "vehicles": [{"description": "white van", "registration": "AB12 CDE"}],
    "language": "en",
    "app": {"platform": "android", "version": "4.1.0"},
}


def submit(client, body: dict | None = None, key: str | None = None, **kwargs):
    """POST a report (the valid example unless `body` is given)."""
    headers = {"Idempotency-Key": key or new_key(), **kwargs.pop("headers", {})}
    return client.post("/api/v1/reports", json=VALID_REPORT if body is None else body,
                       headers=headers, **kwargs)


# Playwright (pytest-playwright) drives Debian's Chromium, never a downloaded browser.
CHROMIUM = "/usr/bin/chromium"
# The project's launch flags for Debian's Chromium (no sandbox as root, no GPU, no phoning home).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    assert os.path.exists(CHROMIUM), "Chromium is missing: run scripts/services.sh --browser"
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def base_url():
    # pytest-playwright 0.10's own base_url fixture is an instance method of a plugin class,
    # which pytest 9.2 deprecates (an error here, where warnings are errors); the tests build
    # full URLs from the live server's address instead.
    return None


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 860}}
