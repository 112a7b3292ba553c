"""The OpenAPI document against a live server: schemathesis with every check, and a client
generated from the document by openapi-python-client.

Both run against one real HTTP server (werkzeug, threaded, on a free port) on the test
database; what they store is committed and truncated at the end of the module.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import threading
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import text
from werkzeug.serving import make_server

from stopapp import create_app
from stopapp.accounts import services as accounts
from stopapp.areas import services as areas
from stopapp.db import unit_of_work
from stopapp.extensions import db
from tests.conftest import REDIS_URL, ROOT, TABLES, TESTDATA, test_settings

BIN = Path(sys.executable).parent
# Fixed, so that `make test` is repeatable; set another to explore (the seed of a failing run is
# printed in its output).
SEED = os.environ.get("STOPAPP_SCHEMATHESIS_SEED", "20261128")
MAX_EXAMPLES = os.environ.get("STOPAPP_SCHEMATHESIS_EXAMPLES", "15")

pytestmark = pytest.mark.committed


@dataclass(frozen=True)
class Live:
    url: str  # the base URL of the API
    token: str = field(repr=False)  # an admin's API token, kept out of failure output
    admin_id: str


@pytest.fixture(scope="module")
def live(migrated_database, tmp_path_factory):
    """The API served over real HTTP."""
    Redis.from_url(REDIS_URL).flushdb()
    tmp = tmp_path_factory.mktemp("live")
    # The limits stay on (their code runs) but out of reach of a few thousand requests.
    many = "100000/minute"
    app = create_app(test_settings(
        tmp, RATELIMIT_REPORTS=many, RATELIMIT_PHOTOS=many, RATELIMIT_READS=many,
        RATELIMIT_RECEIPT_FAILURES=many,
    ))
    # An admin's token, for the staff operations, and areas whose codes the queue can filter on.
    with app.app_context(), unit_of_work():
        admin = accounts.create_user("st-admin@example.org", "admin", "correct horse battery")
        _, token = accounts.issue_token(admin, "schemathesis")
        admin_id = str(admin.id)
        with (TESTDATA / "geo" / "london_hf_kc_westminster.geojson").open("rb") as source:
            areas.import_areas(None, source, code_property="LAD13CD", name_property="LAD13NM")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}/api/v1", token, admin_id)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        with app.app_context():
            db.session.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
            db.session.commit()
            db.engine.dispose()
        Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture(scope="module")
def live_url(live):
    return live.url


def test_schemathesis_finds_nothing_with_every_check(live, tmp_path):
    """Examples, coverage, fuzzing and the stateful phase (following the document's links)."""
    # For the hooks (tests/schemathesis_hooks.py), which read reports and name real staff.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STOPAPP_SCHEMATHESIS_URL": live.url,
           "STOPAPP_SCHEMATHESIS_TOKEN": live.token, "STOPAPP_SCHEMATHESIS_USER": live.admin_id}
    result = subprocess.run(
        [str(BIN / "st"), "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "run",
         f"{live.url}/openapi.json", "--checks", "all",
         "--header", f"Authorization: Bearer {live.token}",
         "--max-examples", MAX_EXAMPLES, "--seed", SEED, "--no-color",
         "--generation-database", "none", "--report-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20_000:]
    assert "No issues found" in output, output[-5_000:]
    # The stateful phase ran and followed links from a submission to the other operations.
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", output)
    assert links and int(links.group(1)) >= 3, output[-5_000:]


@pytest.fixture(scope="module")
def generated_client(live_url, tmp_path_factory):
    """A Python client generated from the served document, importable as `stopapp_client`."""
    folder = tmp_path_factory.mktemp("client")
    document = folder / "openapi.json"
    with urllib.request.urlopen(f"{live_url}/openapi.json") as response:
        document.write_bytes(response.read())
    config = folder / "config.yaml"
    config.write_text("package_name_override: stopapp_client\npost_hooks: []\n")
    subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--path", str(document),
         "--config", str(config), "--output-path", str(folder / "stopapp_client"),
         "--meta", "none"],
        check=True, capture_output=True, timeout=120,
    )
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("stopapp_client")
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n.split(".")[0] == "stopapp_client"]:
            del sys.modules[name]


def test_a_generated_client_submits_uploads_and_reads_the_status(live_url, generated_client):
    from stopapp_client import Client
    from stopapp_client.api.reports import get_report_status, submit_report, upload_report_photo
    from stopapp_client.models import (
        Location,
        PhotoUpload,
        ReportCreate,
        ReportCreated,
        ReportStatus,
        ValidationProblem,
    )
    from stopapp_client.types import File

    # openapi-python-client 0.29 types a `format: uuid` header as UUID but hands it to httpx,
    # which takes only text: pass the UUID as text.
    with Client(base_url=live_url) as client:
        created = submit_report.sync(
            client=client, idempotency_key=str(uuid.uuid4()),
            body=ReportCreate(description="Men sleep in the back of the car wash.",
                              location=Location(lat=51.4927, lon=-0.2240)),
        )
        assert isinstance(created, ReportCreated), created
        with (TESTDATA / "photos" / "iphone6_gps.jpg").open("rb") as photo:
            accepted = upload_report_photo.sync(
                created.id, client=client, x_report_receipt=created.receipt,
                idempotency_key=str(uuid.uuid4()),
                body=PhotoUpload(photo=File(payload=photo, file_name="p.jpg",
                                            mime_type="image/jpeg")),
            )
        assert accepted.status == "processing", accepted
        status = get_report_status.sync(created.id, client=client,
                                        x_report_receipt=created.receipt)
        assert isinstance(status, ReportStatus), status
        assert status.status == "received"
        assert [p.id for p in status.photos] == [accepted.id]

        # An error comes back as the documented problem, with its field paths.
        refused = submit_report.sync(
            client=client, idempotency_key=str(uuid.uuid4()),
            body=ReportCreate(description="   ", place="Market square"),
        )
        assert isinstance(refused, ValidationProblem), refused
        assert "description" in refused.errors.to_dict()


CHROMIUM = Path("/usr/bin/chromium")  # Debian's, installed by `make test` (scripts/services.sh)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_swagger_ui_renders_the_3_1_document(live_url):
    """The Swagger UI that flask-restx ships knows OpenAPI 3.0 only: the page must still show
    every operation of the 3.1 document, not "Unable to render this definition"."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page()
            outside = []
            page.on("request", lambda request: outside.append(request.url)
                    if not request.url.startswith(live_url.removesuffix("/api/v1")) else None)
            page.goto(f"{live_url}/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=15_000)
            paths = set(page.locator(".opblock-summary-path").all_inner_texts())
            assert "Unable to render" not in page.content()
        finally:
            browser.close()
    assert {"/reports", "/reports/{report_id}/photos", "/meta"} <= {
        p.replace("\u200b", "") for p in paths}
    assert outside == [] or all(url.startswith("data:") for url in outside), outside
