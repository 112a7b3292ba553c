"""Delivery that can be trusted: real SMTP servers, real worker processes, real crashes."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import uuid

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rq import Queue
from sqlalchemy import select

from stopapp.extensions import db
from stopapp.forwarding.delivery import TransientDeliveryError
from stopapp.forwarding.models import Forward
from tests.conftest import REDIS_URL, ROOT
from tests.forwarding.conftest import Inbox, free_port, new_report, wait_for
from tests.forwarding.test_email import forward_row
from tests.helpers import assert_problem
from workers import jobs


def statuses(app) -> list[str]:
    with app.app_context():
        db.session.expire_all()
        return list(db.session.scalars(select(Forward.status).order_by(Forward.created_at)))


def worker_env(app, database_url: str, **extra) -> dict:
    config = app.extensions["stopapp.config"]
    return {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL,
            "SMTP_PORT": str(config.SMTP_PORT), "GNUPG_HOME": config.GNUPG_HOME,
            "MEDIA_ROOT": config.MEDIA_ROOT,
            "FORWARD_RETRY_INTERVALS_S": config.FORWARD_RETRY_INTERVALS_S, **extra}


def one_forward(scene, *authorities: str) -> list[str]:
    report_id, _ = new_report(scene.app)
    ids = [scene.authority(name, [f"{name.lower()}@example.org"], ["E09000013"])
           for name in authorities or ("Police",)]
    return scene.forward_ids(report_id, ids)


def test_smtp_down_then_back_every_forward_is_delivered_exactly_once(
    scene_at, smtp_server, migrated_database, redis_conn
):
    port = free_port()  # nothing listens yet: connections are refused
    scene = scene_at(port, FORWARD_RETRY_INTERVALS_S="1,2,2,2,2,2,2,2")
    forward_ids = one_forward(scene, "Police", "Inspectorate", "Council")
    assert Queue("forwarding", connection=redis_conn).count == 3
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers.worker", "forwarding"], cwd=ROOT,
        env=worker_env(scene.app, migrated_database), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: statuses(scene.app) == ["retrying"] * 3)
        assert "ConnectionRefusedError" in forward_row(scene.app, forward_ids[0]).last_error
        server = smtp_server(port=port)
        wait_for(lambda: statuses(scene.app) == ["sent"] * 3)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    expected = sorted(forward_row(scene.app, f).message_id for f in forward_ids)
    assert sorted(server.inbox.message_ids()) == expected
    assert all(forward_row(scene.app, f).attempts >= 2 for f in forward_ids)


def test_451_then_250_delivers_once(scene_at, smtp_server):
    server = smtp_server(Inbox(replies=["451 4.3.0 Try again later"]))
    scene = scene_at(server.port)
    [forward_id] = one_forward(scene)
    with pytest.raises(TransientDeliveryError):
        scene.send(forward_id)  # RQ retries a job that raises, after the next delay
    row = forward_row(scene.app, forward_id)
    assert (row.status, row.attempts) == ("retrying", 1)
    assert row.last_error == "451 4.3.0 Try again later"
    assert scene.send(forward_id) == "sent"
    assert scene.send(forward_id) == "nothing to do"  # running it again never sends twice
    assert len(server.inbox.received) == 1
    assert forward_row(scene.app, forward_id).attempts == 2


def test_transient_failures_end_in_failed_once_the_attempts_are_used_up(scene_at, smtp_server):
    server = smtp_server(Inbox(replies=["421 4.7.0 Busy"] * 10))
    scene = scene_at(server.port)  # three retries
    [forward_id] = one_forward(scene)
    for _ in range(3):
        with pytest.raises(TransientDeliveryError):
            scene.send(forward_id)
    assert scene.send(forward_id) == "failed"
    row = forward_row(scene.app, forward_id)
    assert row.attempts == 4 and row.last_error == "421 4.7.0 Busy (after 4 attempts)"
    assert server.inbox.received == []


def test_550_fails_with_the_reply_then_resend_succeeds_after_the_fix(scene_at, smtp_server):
    inbox = Inbox(replies=["550 5.7.1 Relaying denied"])
    server = smtp_server(inbox)
    scene = scene_at(server.port)
    [forward_id] = one_forward(scene)
    assert scene.send(forward_id) == "failed"
    row = forward_row(scene.app, forward_id)
    assert (row.status, row.last_error, row.sent_at) == ("failed", "550 5.7.1 Relaying denied",
                                                         None)
    listed = scene.client.get("/api/v1/triage/forwards?status=failed",
                              headers=scene.analyst.headers).get_json()
    assert [f["id"] for f in listed] == [forward_id]
    assert listed[0]["last_error"] == "550 5.7.1 Relaying denied"

    # The fix: the server now accepts (no more scripted refusals). Resend.
    response = scene.client.post(f"/api/v1/triage/forwards/{forward_id}/resend",
                                 headers=scene.analyst.headers)
    assert response.status_code == 202 and response.get_json()["status"] == "queued"
    assert scene.send(forward_id) == "sent"
    assert len(inbox.received) == 1
    assert_problem(scene.client.post(f"/api/v1/triage/forwards/{forward_id}/resend",
                                     headers=scene.analyst.headers), 409)


def test_crash_after_the_server_accepted_repeats_only_that_message_with_its_message_id(
    scene_at, smtp_server, migrated_database
):
    inbox = Inbox()
    server = smtp_server(inbox)
    scene = scene_at(server.port)
    [forward_id] = one_forward(scene)
    # A real process runs the job; the server kills it (SIGKILL) once it has kept the message
    # and before its 250 reaches the job: the acceptance is never written to the database.
    job = subprocess.Popen(
        [sys.executable, "-c", "import sys; from workers import jobs; "
         "jobs.send_forward(sys.argv[1])", forward_id],
        cwd=ROOT, env=worker_env(scene.app, migrated_database),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    inbox.on_accept = lambda: os.kill(job.pid, signal.SIGKILL)
    assert job.wait(timeout=60) == -signal.SIGKILL
    inbox.on_accept = None
    row = forward_row(scene.app, forward_id)
    assert (row.status, row.attempts) == ("queued", 1) and row.sending_since is not None
    assert len(inbox.received) == 1

    assert scene.send(forward_id) == "sent"  # the next run (RQ's retry or the reconciler)
    assert scene.send(forward_id) == "nothing to do"
    assert len(inbox.received) == 2  # the one repeat, recognisable by its Message-ID
    assert inbox.message_ids() == [row.message_id, row.message_id]


def test_reconciler_requeues_a_forward_whose_job_was_lost(scene_at, smtp_server, make_app,
                                                         redis_conn):
    scene = scene_at(smtp_server().port)
    [forward_id] = one_forward(scene)
    redis_conn.flushdb()  # the job is lost
    with make_app(RECONCILE_AFTER_S=0).app_context():
        assert jobs.reconcile() == 1
        assert jobs.reconcile() == 0  # queued already: not twice
    assert Queue("forwarding", connection=redis_conn).job_ids == [f"send-forward-{forward_id}"]
    assert uuid.UUID(forward_id)


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 and its key, made here; the client trusts it as its CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_starttls_and_login_when_configured(scene_at, tmp_path):
    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password, session.ssl is not None))
        return AuthResult(success=auth_data.password == b"s3cret-relay")

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=authenticator,
                            auth_require_tls=True)
    controller.start()
    try:
        scene = scene_at(port, SMTP_STARTTLS=1, SMTP_CA_FILE=str(cert_file),
                         SMTP_USERNAME="relay-user", SMTP_PASSWORD="s3cret-relay")
        [forward_id] = one_forward(scene)
        assert scene.send(forward_id) == "sent"
    finally:
        controller.stop()
    assert logins == [(b"relay-user", b"s3cret-relay", True)]
    assert len(inbox.received) == 1
