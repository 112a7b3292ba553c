"""Fixtures for authorities and forwarding: the real London boroughs as areas, staff tokens,
reports with photos, real SMTP servers (aiosmtpd) and PGP keys made in the test."""

from __future__ import annotations

import email
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import gnupg
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text, update

from stopapp.accounts import services as accounts
from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.models import Report
from tests.conftest import TESTDATA, VALID_REPORT, submit
from workers import jobs

LONDON = TESTDATA / "geo" / "london_hf_kc_westminster.geojson"
HF, KC, WESTMINSTER = "E09000013", "E09000020", "E09000033"
# Soho, and a point in Greenwich (outside every imported area).
IN_WESTMINSTER = (51.513612, -0.136541)
OUTSIDE = (51.480213, -0.001822)
# The ports this engineer may use; aiosmtpd needs to know its port before it starts.
PORTS = (*range(8080, 8090), *range(5080, 5090))


def load_london_areas() -> None:
    """Insert the three real boroughs into `areas` (a test stand-in for `flask areas import`)."""
    for feature in json.loads(LONDON.read_text())["features"]:
        db.session.execute(text(
            "INSERT INTO areas (code, name, geom) VALUES (:code, :name, "
            "ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(:geom), 4326))) ON CONFLICT (code) DO NOTHING"
        ), {"code": feature["properties"]["LAD13CD"], "name": feature["properties"]["LAD13NM"],
            "geom": json.dumps(feature["geometry"])})


def border_points(metres: float = 5.0) -> tuple[tuple[float, float], tuple[float, float]]:
    """Points `metres` from the middle of the longest stretch of the H&F / K&C border, one
    on each side, computed from the real polygons: ((lat, lon) in H&F, (lat, lon) in K&C)."""
    border = db.session.execute(text(
        "SELECT ST_LineInterpolatePoint(d.geom, 0.5) FROM (SELECT (ST_Dump(ST_Intersection("
        "ST_Boundary(a.geom), ST_Boundary(b.geom)))).geom FROM areas a, areas b "
        "WHERE a.code = :hf AND b.code = :kc) d ORDER BY ST_Length(d.geom) DESC LIMIT 1"
    ), {"hf": HF, "kc": KC}).scalar_one()
    found = {}
    for azimuth in range(0, 360, 15):
        lat, lon, codes = db.session.execute(text(
            "WITH p AS (SELECT ST_Project(CAST(:b AS geometry)::geography, :m, radians(:az))"
            "::geometry AS g) SELECT ST_Y(p.g), ST_X(p.g), array_agg(a.code) FILTER "
            "(WHERE ST_Covers(a.geom, p.g)) FROM p LEFT JOIN areas a ON true GROUP BY p.g"
        ), {"b": border, "m": metres, "az": azimuth}).one()
        if codes in ([HF], [KC]):
            found.setdefault(codes[0], (lat, lon))
    return found[HF], found[KC]


@dataclass
class Staff:
    id: uuid.UUID
    token: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


def make_staff(app, role: str, email_address: str | None = None) -> Staff:
    with app.app_context(), unit_of_work():
        user = accounts.create_user(email_address or f"{role}-{uuid.uuid4().hex[:6]}@example.org",
                                    role, "correct horse battery", name=role.title())
        _, token = accounts.issue_token(user, "test")
        return Staff(user.id, token)


def new_report(app, *, lat: float = 51.492731, lon: float = -0.224048, state: str = "new",
               **fields) -> tuple[str, str]:
    """A report through the public API, taken through triage to `state`; (id, receipt)."""
    body = {**VALID_REPORT, "location": {"lat": lat, "lon": lon, "accuracy_m": 20,
                                          "source": "gps"}, **fields}
    response = submit(app.test_client(), body)
    assert response.status_code == 201, response.get_data(as_text=True)
    report_id = response.get_json()["id"]
    with app.app_context():
        jobs.triage_report(report_id)
        if state != "new":
            with unit_of_work():
                db.session.execute(update(Report).where(Report.id == uuid.UUID(report_id))
                                   .values(state=state))
    return report_id, response.get_json()["receipt"]


def report_version(app, report_id: str) -> int:
    with app.app_context():
        db.session.expire_all()
        return db.session.get(Report, uuid.UUID(report_id)).version


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in this engineer's range")


@dataclass
class Inbox:
    """An aiosmtpd handler: answers DATA with the scripted replies (then 250), keeps what it
    accepted. `on_accept` runs after a message is kept, before the 250 goes out."""

    replies: list[str] = field(default_factory=list)
    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list = field(default_factory=list)
    on_accept: Callable[[], None] | None = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook
        reply = self.replies.pop(0) if self.replies else "250 2.0.0 Ok: queued as TEST"
        if reply.startswith("250"):
            self.envelopes.append(envelope)
            self.received.append(email.message_from_bytes(envelope.content,
                                                          policy=default_policy))
            if self.on_accept:
                self.on_accept()
        return reply

    def message_ids(self) -> list[str]:
        return [m["Message-ID"] for m in self.received]


class SmtpServer:
    def __init__(self, port: int, inbox: Inbox) -> None:
        self.port, self.inbox = port, inbox
        self.controller = Controller(inbox, hostname="127.0.0.1", port=port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_server():
    """Start real SMTP servers on free ports; each is stopped after the test."""
    servers: list[SmtpServer] = []

    def start(inbox: Inbox | None = None, port: int | None = None) -> SmtpServer:
        server = SmtpServer(port or free_port(), inbox or Inbox()).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        try:
            server.stop()
        except (AssertionError, RuntimeError):
            pass  # already stopped by the test


@pytest.fixture
def forwarding_app(make_app, tmp_path):
    """Build an app (real commits) whose mail goes to `port`, with retries seconds apart."""

    def build(port: int, **overrides):
        settings = {"SMTP_PORT": port, "FORWARD_RETRY_INTERVALS_S": "1,1,1",
                    "GNUPG_HOME": str(tmp_path / "gnupg"), **overrides}
        return make_app(**settings)

    yield build
    # gpg starts an agent for the service's keyring when it encrypts; it would outlive the run.
    _kill_agent(tmp_path / "gnupg")


@dataclass
class KeyPair:
    fingerprint: str
    public: str
    gpg: gnupg.GPG  # holds the private key, for decrypting in the test


def _kill_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                   check=False, capture_output=True)


@pytest.fixture(scope="session")
def pgp_keys(tmp_path_factory):
    """Make PGP keys in a keyring of the test's own: a good one, an expired one, a sign-only
    one. The private keys never leave the test's temporary folder."""
    home = tmp_path_factory.mktemp("gpg-owner")
    os.chmod(home, 0o700)
    gpg = gnupg.GPG(gnupghome=str(home))

    def make(email_address: str, *, expire: str = "1y", encrypt: bool = True,
             made_on: str | None = None) -> KeyPair:
        # gpg will not make an already expired key, except with a clock set back.
        maker = gpg if made_on is None else gnupg.GPG(
            gnupghome=str(home), options=["--faked-system-time", made_on])
        params = dict(key_type="EDDSA", key_curve="ed25519", key_usage="sign",
                      name_email=email_address, name_real="Test authority", no_protection=True,
                      expire_date=expire)
        if encrypt:
            params.update(subkey_type="ECDH", subkey_curve="cv25519", subkey_usage="encrypt")
        key = maker.gen_key(maker.gen_key_input(**params))
        assert key.fingerprint, key.stderr
        return KeyPair(key.fingerprint, gpg.export_keys(key.fingerprint), gpg)

    good = make("westminster@example.org")
    sign_only = make("signer@example.org", encrypt=False)
    expired = make("old@example.org", expire="1y", made_on="20200101T000000")
    yield {"good": good, "sign_only": sign_only, "expired": expired, "gpg": gpg, "make": make}
    _kill_agent(home)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every_s)
    raise AssertionError("timed out waiting")



# --------------------------------------------------------------------------------------------
# A whole scene: areas, staff, authorities, a report; forwarding through the API


FORWARDS_URL = "/api/v1/triage/reports/{}/forwards"


@dataclass
class Scene:
    app: object
    admin: Staff
    analyst: Staff

    @property
    def client(self):
        return self.app.test_client()

    def authority(self, name: str, emails: list[str], areas: list[str], **fields) -> str:
        response = self.client.post("/api/v1/triage/authorities", headers=self.admin.headers,
                                    json={"name": name, "emails": emails, "area_codes": areas,
                                          **fields})
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()["id"]

    def forward(self, report_id: str, authority_ids: list[str], version: int | None = None,
                staff: Staff | None = None, **fields):
        version = report_version(self.app, report_id) if version is None else version
        return self.client.post(
            FORWARDS_URL.format(report_id),
            headers={**(staff or self.analyst).headers, "If-Match": f'"{version}"'},
            json={"authority_ids": authority_ids, **fields},
        )

    def forward_ids(self, *args, **kwargs) -> list[str]:
        response = self.forward(*args, **kwargs)
        assert response.status_code == 202, response.get_data(as_text=True)
        return [f["id"] for f in response.get_json()["forwards"]]

    def send(self, forward_id: str):
        with self.app.app_context():
            return jobs.send_forward(forward_id)


@pytest.fixture
def scene_at(forwarding_app):
    """A committed scene (areas, an admin, an analyst) whose mail goes to `port`."""

    def build(port: int, **overrides) -> Scene:
        app = forwarding_app(port, **overrides)
        with app.app_context(), unit_of_work():
            load_london_areas()
        return Scene(app, make_staff(app, "admin"), make_staff(app, "analyst"))

    return build
