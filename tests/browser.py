"""Building blocks for the browser tests: a live gunicorn serving the real app on the test
database and Redis, signing in, and screenshots for the README.

A test module seeds its own data, then serves it with `live_site`:

    @pytest.fixture(scope="module")
    def site(migrated_database, tmp_path_factory):
        with live_site(tmp_path_factory, seed) as site:
            yield site

The data are committed for real and the tables truncated when the module is done. Playwright's
own fixtures (`page`, `browser`) come from pytest-playwright, set up for Debian's Chromium in
conftest.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Locator, Page
from sqlalchemy import text

from stopapp import create_app
from stopapp.extensions import db
from tests.conftest import DATABASE_URL, REDIS_URL, ROOT, TABLES, test_settings

# Several engineers may run suites side by side: each takes the first free port in its range.
PORTS = range(int(os.environ.get("STOPAPP_TEST_PORT", "5040")),
              int(os.environ.get("STOPAPP_TEST_PORT", "5040")) + 10)
# Every run saves its screenshots under var/ (not in git); `make screenshots` runs the browser
# tests with STOPAPP_SCREENSHOTS=docs/screenshots to refresh the images the README shows, so
# that a test run never leaves the committed ones modified.
SCREENSHOTS = ROOT / os.environ.get("STOPAPP_SCREENSHOTS", "var/screenshots")
PASSWORD = "correct horse battery"
XSS = "<script>alert(1)</script> and <img src=x onerror=alert(1)> in the car wash office."


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


class Site:
    """The live server's address and the committed data the tests use."""

    def __init__(self, url: str, app) -> None:
        self.url = url
        self.app = app
        self.reports: dict[str, str] = {}
        self.admin_totp = None  # a pyotp.TOTP when the seed made an admin
        self.data: dict = {}  # anything else a seed wants the tests to know

    def __call__(self, path: str) -> str:
        return self.url + path


@contextmanager
def live_site(tmp_path_factory, seed: Callable[[object, Site], None],
              **env_overrides: str) -> Iterator[Site]:
    """gunicorn serving the real app on a free port, after `seed(app, site)` committed its data."""
    tmp = tmp_path_factory.mktemp("site")
    app = create_app(test_settings(tmp))
    port = _free_port()
    site = Site(f"http://127.0.0.1:{port}", app)
    seed(app, site)
    env = {**os.environ, "STOPAPP_ENV": "development", "DATABASE_URL": DATABASE_URL,
           "REDIS_URL": REDIS_URL, "MEDIA_ROOT": str(tmp / "media"), "RATELIMIT_ENABLED": "0",
           "PASSWORD_TIME_COST": "1", "PASSWORD_MEMORY_KIB": "1024", **env_overrides}
    # A file, not a pipe: a pipe nobody reads would block gunicorn once it filled up.
    log = open(tmp / "gunicorn.log", "w+b")  # closed in the finally below
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--threads", "4", "wsgi:app"],
        cwd=ROOT, env=env, stdout=log, stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(site("/triage/sign-in"), timeout=1).close()
                break
            except OSError as exc:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError("gunicorn did not start: "
                                       + log.read().decode(errors="replace")[-2000:]) from exc
                time.sleep(0.2)
        yield site
    finally:
        server.terminate()
        server.wait(10)
        log.close()
        with app.app_context():
            db.session.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
            db.session.commit()
            db.engine.dispose()


def shot(page: Page, name: str, part: Locator | None = None) -> None:
    """Save the whole page, or only `part` of it, as `name`.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if part is None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    else:
        part.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def sign_in(page: Page, site: Site, email: str, password: str = PASSWORD, code: str = "",
            path: str = "/triage/sign-in") -> None:
    page.goto(site(path))
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    if code:
        page.get_by_label("Code from your authenticator app").fill(code)
    page.get_by_role("button", name="Sign in").click()


