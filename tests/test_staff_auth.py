"""The staff API's bearer tokens, on the real database."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from stopapp.accounts import services as accounts
from stopapp.accounts.models import ApiToken
from stopapp.audit.models import AuditEvent
from stopapp.audit.services import record
from stopapp.db import unit_of_work
from stopapp.extensions import db
from tests.helpers import assert_problem


def make_user(app, role="analyst", email="ana@example.org"):
    with app.app_context(), unit_of_work():
        user = accounts.create_user(email, role, "correct horse battery", name="Ana")
        _, token = accounts.issue_token(user, "test")
        return user.id, token


def test_me_answers_the_token_owner(app, client):
    user_id, token = make_user(app)
    response = client.get("/api/v1/triage/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json() == {
        "id": str(user_id), "email": "ana@example.org", "name": "Ana", "role": "analyst"
    }


def test_token_is_stored_only_as_a_hash_and_its_use_recorded(app, client):
    _, token = make_user(app)
    client.get("/api/v1/triage/me", headers={"Authorization": f"Bearer {token}"})
    with app.app_context():
        row = db.session.scalar(select(ApiToken))
        assert token.encode() not in row.token_hash and len(row.token_hash) == 32
        assert row.last_used_at is not None


def test_missing_or_bad_token_is_401_with_bearer_challenge(app, client):
    make_user(app)
    for headers in ({}, {"Authorization": "Bearer stp_nope"}, {"Authorization": "Basic abc"}):
        response = client.get("/api/v1/triage/me", headers=headers)
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_and_deactivated_user_are_refused(app, client):
    _, token = make_user(app)
    with app.app_context(), unit_of_work():
        accounts.revoke_all_tokens(accounts.get_user("ana@example.org"))
    assert_problem(client.get("/api/v1/triage/me",
                              headers={"Authorization": f"Bearer {token}"}), 401)


def test_password_is_hashed_with_argon2id(app):
    with app.app_context():
        user = accounts.create_user("b@example.org", "admin", "correct horse battery")
        assert user.password_hash.startswith("$argon2id$")
        assert accounts.password_matches(user, "correct horse battery")
        assert not accounts.password_matches(user, "correct horse batterz")


def test_audit_trail_refuses_update_delete_and_truncate(app):
    with app.app_context():
        event = record(None, "test.event", detail={"n": 1})
        db.session.flush()
        for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events",
                          "TRUNCATE audit_events"):
            savepoint = db.session.begin_nested()
            with pytest.raises(DBAPIError, match="append-only"):
                db.session.execute(text(statement))
            savepoint.rollback()
        # Found by id: tests that commit leave their own events behind (they cannot be deleted).
        assert db.session.scalar(
            select(AuditEvent.action).where(AuditEvent.id == event.id)
        ) == "test.event"
