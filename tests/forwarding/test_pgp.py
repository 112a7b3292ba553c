"""PGP/MIME (RFC 3156) for authorities with a key, with keys made in the test."""

from __future__ import annotations

import email
from email.policy import default as default_policy

import pytest
from sqlalchemy import func, select

from stopapp.extensions import db
from stopapp.forwarding import pgp
from stopapp.forwarding.models import Forward
from tests.forwarding.conftest import new_report, report_version
from tests.forwarding.test_email import add_photos, attachments, forward_row, parse_geojson
from tests.helpers import assert_problem


def test_encrypted_mail_decrypts_to_the_plaintext_message(scene_at, smtp_server, pgp_keys):
    server = smtp_server()
    scene = scene_at(server.port)
    key = pgp_keys["good"]
    secure = scene.authority("Westminster", ["w@example.org"], ["E09000013"],
                             pgp_public_key=key.public, encrypted_only=True)
    plain = scene.authority("Plain", ["p@example.org"], ["E09000013"])
    report_id, receipt = new_report(scene.app)
    add_photos(scene.app, report_id, receipt, ["iphone6_gps.jpg", "orientation_6.jpg"])
    forward_ids = scene.forward_ids(report_id, [secure, plain], note="Urgent.")
    for forward_id in forward_ids:
        assert scene.send(forward_id) == "sent"
    by_id = {m["Message-ID"]: m for m in server.inbox.received}
    encrypted = by_id[forward_row(scene.app, forward_ids[0]).message_id]
    plaintext = by_id[forward_row(scene.app, forward_ids[1]).message_id]
    assert forward_row(scene.app, forward_ids[0]).encrypted is True

    assert encrypted.get_content_type() == "multipart/encrypted"
    assert encrypted.get_param("protocol") == "application/pgp-encrypted"
    control, payload = encrypted.get_payload()
    assert control.get_content_type() == "application/pgp-encrypted"
    assert "Version: 1" in control.get_payload()
    assert payload.get_content_type() == "application/octet-stream"
    raw = encrypted.as_string()
    for secret in ("car wash", "Urgent.", "labour", "Hammersmith"):
        assert secret not in raw  # nothing of the report outside the encryption
    decrypted = key.gpg.decrypt(payload.get_payload())
    assert decrypted.ok, decrypted.status
    inner = email.message_from_bytes(decrypted.data, policy=default_policy)
    # The protected headers, and the same parts as the plaintext message.
    assert inner["Subject"] == plaintext["Subject"]
    for kind in ("plain", "html"):
        assert (inner.get_body(preferencelist=(kind,)).get_content()
                == plaintext.get_body(preferencelist=(kind,)).get_content())
    inner_files, plain_files = attachments(inner), attachments(plaintext)
    assert sorted(inner_files) == sorted(plain_files) and len(inner_files) == 3
    for name, part in inner_files.items():
        assert part.get_content() == plain_files[name].get_content()
    [geo] = [p for n, p in inner_files.items() if n.endswith(".geojson")]
    parse_geojson(geo.get_content())


def test_encrypted_only_authority_without_a_usable_key_is_refused_by_name(
    scene_at, smtp_server
):
    server = smtp_server()
    scene = scene_at(server.port)
    locked = scene.authority("Locked Unit", ["l@example.org"], ["E09000013"],
                             encrypted_only=True)
    plain = scene.authority("Plain", ["p@example.org"], ["E09000013"])
    report_id, _ = new_report(scene.app)
    version = report_version(scene.app, report_id)
    response = scene.forward(report_id, [plain, locked])
    body = assert_problem(response, 422, "authority_ids")
    assert any("Locked Unit" in text for text in body["errors"]["authority_ids"])
    assert report_version(scene.app, report_id) == version  # nothing changed, nothing sent
    with scene.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Forward)) == 0
    assert server.inbox.received == []


def test_job_never_sends_plaintext_to_an_encrypted_only_authority(scene_at, smtp_server,
                                                                  pgp_keys):
    # The key is removed after the forward was written: the job refuses rather than send.
    server = smtp_server()
    scene = scene_at(server.port)
    secure = scene.authority("Westminster", ["w@example.org"], ["E09000013"],
                             pgp_public_key=pgp_keys["good"].public, encrypted_only=True)
    report_id, _ = new_report(scene.app)
    [forward_id] = scene.forward_ids(report_id, [secure])
    response = scene.client.patch(f"/api/v1/triage/authorities/{secure}",
                                  headers=scene.admin.headers, json={"pgp_public_key": None})
    assert response.status_code == 200
    assert scene.send(forward_id) == "failed"
    assert "no usable key" in forward_row(scene.app, forward_id).last_error
    assert server.inbox.received == []


def test_a_key_that_is_not_ascii_is_refused_without_reaching_gpg():
    """python-gnupg hands gpg latin-1 text: anything else used to raise (a 500)."""
    with pytest.raises(pgp.KeyRejected, match="ASCII-armoured"):
        pgp.inspect_public_key("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\U0002b4ba\n")
