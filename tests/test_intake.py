"""Report intake: the answer, idempotency, receipts, contact encryption, queueing."""

from __future__ import annotations

import re
import uuid

from cryptography.fernet import Fernet
from rq import Queue
from sqlalchemy import select, text

from stopapp.config import DEV_DATA_ENCRYPTION_KEY
from stopapp.extensions import db
from stopapp.models import Report
from stopapp.security import ContactCipher
from tests.conftest import VALID_REPORT, new_key, submit
from tests.helpers import assert_problem, counts

RECEIPT = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){4}$")
CONTACT = {"name": "Ana Example", "phone": "+44 7700 900123", "email": "ana@example.org"}


def stored_report(app, report_id: str) -> Report:
    with app.app_context():
        return db.session.get(Report, uuid.UUID(report_id))


def test_submission_answers_201_with_receipt_and_contract_fields(client):
    response = submit(client)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "receipt", "status", "created_at", "max_photos"}
    assert uuid.UUID(body["id"]).version == 4
    assert RECEIPT.match(body["receipt"])
    assert body["status"] == "received"
    assert body["max_photos"] == 10
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", body["created_at"])


def test_report_is_stored_in_postgis_with_its_location(client, app):
    body = submit(client).get_json()
    with app.app_context():
        row = db.session.execute(
            select(
                Report.reference,
                Report.state,
                db.func.ST_Y(db.func.ST_GeomFromWKB(Report.location)),
                db.func.ST_X(db.func.ST_GeomFromWKB(Report.location)),
            ).where(Report.id == uuid.UUID(body["id"]))
        ).one()
    assert re.match(r"^R-\d{4}-\d{6}$", row[0])
    assert row[1] == "received"
    assert (round(row[2], 4), round(row[3], 4)) == (51.4927, -0.2240)


def test_receipt_and_idempotency_key_are_stored_only_as_hashes(client, app):
    key = new_key()
    body = submit(client, key=key).get_json()
    report = stored_report(app, body["id"])
    stored = b"".join(
        v if isinstance(v, bytes) else str(v).encode()
        for v in (report.receipt_hash, report.idempotency_key_hash, report.request_hash)
    )
    for secret in (body["receipt"], body["receipt"].replace("-", ""), key, uuid.UUID(key).hex):
        assert secret.encode() not in stored
    assert len(report.receipt_hash) == 32


def test_retry_with_same_idempotency_key_returns_first_answer(client, app):
    # That a retry queues no second job: tests/test_dispatcher.py.
    key = new_key()
    first = submit(client, key=key)
    again = submit(client, key=key)
    assert again.status_code == first.status_code == 201
    assert again.get_json() == first.get_json()
    with app.app_context():
        assert counts()["reports"] == 1


def test_same_key_with_another_body_is_422_and_stores_nothing(client, app):
    key = new_key()
    submit(client, key=key)
    response = submit(client, {**VALID_REPORT, "description": "Something else."}, key=key)
    assert_problem(response, 422, "Idempotency-Key")
    with app.app_context():
        assert counts()["reports"] == 1


def test_different_keys_give_different_reports_and_receipts(client):
    first, second = submit(client).get_json(), submit(client).get_json()
    assert first["id"] != second["id"] and first["receipt"] != second["receipt"]


def test_the_request_itself_queues_nothing(client, redis_conn):
    # The dispatcher queues the triage job once the row is committed (tests/test_dispatcher.py).
    assert submit(client).status_code == 201
    assert Queue("triage", connection=redis_conn).job_ids == []


def test_reference_comes_from_the_database(client, app):
    first, second = (submit(client).get_json()["id"] for _ in range(2))
    with app.app_context():
        refs = [db.session.get(Report, uuid.UUID(i)).reference for i in (first, second)]
    assert all(re.fullmatch(r"R-\d{4}-\d{6}", ref) for ref in refs)
    assert int(refs[1][-6:]) == int(refs[0][-6:]) + 1


def test_references_have_six_digits_at_least(app):
    """report_reference() pads to six digits and grows past 999999 (never truncates)."""
    with app.app_context():
        year = db.session.scalar(text("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY')"))
        # setval is not rolled back with the test's transaction: put the sequence back.
        was = db.session.execute(
            text("SELECT last_value, is_called FROM report_reference_seq")).one()
        try:
            db.session.execute(text("SELECT setval('report_reference_seq', 41)"))
            assert db.session.scalar(text("SELECT report_reference()")) == f"R-{year}-000042"
            db.session.execute(text("SELECT setval('report_reference_seq', 1234566)"))
            assert db.session.scalar(text("SELECT report_reference()")) == f"R-{year}-1234567"
        finally:
            db.session.execute(text("SELECT setval('report_reference_seq', :value, :called)"),
                               {"value": was.last_value, "called": was.is_called})


def test_contact_without_consent_is_not_stored(client, app):
    body = submit(client, {**VALID_REPORT, "contact": {**CONTACT, "consent_to_contact": False}})
    assert stored_report(app, body.get_json()["id"]).contact_encrypted is None
    body = submit(client, {**VALID_REPORT, "contact": CONTACT})
    assert stored_report(app, body.get_json()["id"]).contact_encrypted is None


def test_contact_with_consent_is_encrypted_at_rest(client, app):
    payload = {**VALID_REPORT, "contact": {**CONTACT, "consent_to_contact": True}}
    report = stored_report(app, submit(client, payload).get_json()["id"])
    token = bytes(report.contact_encrypted)
    for value in CONTACT.values():
        assert value.encode() not in token
    assert ContactCipher(DEV_DATA_ENCRYPTION_KEY).decrypt(token) == CONTACT


def test_rotating_keys_reencrypts_contacts_under_the_new_key(make_app, committed_app):
    payload = {**VALID_REPORT, "contact": {**CONTACT, "consent_to_contact": True}}
    report_id = submit(committed_app.test_client(), payload).get_json()["id"]
    new = Fernet.generate_key().decode()
    rotated_app = make_app(DATA_ENCRYPTION_KEY=f"{new},{DEV_DATA_ENCRYPTION_KEY}")
    result = rotated_app.test_cli_runner().invoke(args=["rotate-contact-keys"])
    assert "re-encrypted 1 contact record(s)" in result.output
    token = bytes(stored_report(committed_app, report_id).contact_encrypted)
    assert ContactCipher(new).decrypt(token) == CONTACT


def test_status_with_receipt_shows_the_reporters_view(client):
    created = submit(client).get_json()
    response = client.get(
        f"/api/v1/reports/{created['id']}/status", headers={"X-Report-Receipt": created["receipt"]}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == created["id"]
    assert body["status"] == "received"
    assert body["photos"] == [] and body["messages"] == []
    assert response.headers["Cache-Control"] == "no-store"


def test_receipt_is_accepted_in_lower_case_and_without_dashes(client):
    created = submit(client).get_json()
    relaxed = created["receipt"].replace("-", "").lower()
    response = client.get(
        f"/api/v1/reports/{created['id']}/status", headers={"X-Report-Receipt": relaxed}
    )
    assert response.status_code == 200


def test_wrong_receipt_is_indistinguishable_from_unknown_report(client):
    created = submit(client).get_json()
    wrong = client.get(
        f"/api/v1/reports/{created['id']}/status", headers={"X-Report-Receipt": "AAAA-BBBB"}
    )
    unknown = client.get(
        f"/api/v1/reports/{uuid.uuid4()}/status", headers={"X-Report-Receipt": created["receipt"]}
    )
    missing = client.get(f"/api/v1/reports/{created['id']}/status")
    assert_problem(wrong, 404)
    assert wrong.get_json() == unknown.get_json() == missing.get_json()


def test_reporter_message_is_added_and_shown_in_status(client, app):
    created = submit(client).get_json()
    headers = {"X-Report-Receipt": created["receipt"]}
    response = client.post(
        f"/api/v1/reports/{created['id']}/messages", json={"body": "The van came back."},
        headers=headers,
    )
    assert response.status_code == 201
    message = response.get_json()
    assert message["from"] == "reporter" and message["body"] == "The van came back."
    status = client.get(f"/api/v1/reports/{created['id']}/status", headers=headers).get_json()
    assert [m["id"] for m in status["messages"]] == [message["id"]]


def test_message_with_wrong_receipt_is_404_and_stores_nothing(client, app):
    created = submit(client).get_json()
    response = client.post(
        f"/api/v1/reports/{created['id']}/messages", json={"body": "hello"},
        headers={"X-Report-Receipt": "WRONG"},
    )
    assert_problem(response, 404)
    with app.app_context():
        assert counts()["report_messages"] == 0


def test_exploitation_types_default_to_unknown(client, app):
    payload = {k: v for k, v in VALID_REPORT.items() if k != "exploitation_types"}
    report = stored_report(app, submit(client, payload).get_json()["id"])
    assert report.exploitation_types == ["unknown"]
