"""`flask users ...` through Click's runner, on the real database."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from sqlalchemy import select

from stopapp.accounts import services as accounts
from stopapp.accounts.models import ApiToken
from stopapp.audit.models import AuditEvent
from stopapp.extensions import db

PASSWORD = "correct horse battery staple"


def create(runner, email="ana@example.org", role="analyst", password=PASSWORD, *extra):
    return runner.invoke(
        args=["users", "create", email, "--role", role, *extra], input=password + "\n"
    )


def events(app, action):
    with app.app_context():
        return list(db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        ))


def test_create_reads_the_password_from_stdin_and_audits(app, runner):
    result = create(runner, "Ana@Example.org", "supervisor", PASSWORD, "--name", "Ana Analyst")
    assert result.exit_code == 0, result.output
    assert "created supervisor ana@example.org" in result.output
    assert PASSWORD not in result.output
    with app.app_context():
        user = accounts.get_user("ana@example.org")
        assert (user.name, user.role, user.active) == ("Ana Analyst", "supervisor", True)
        assert accounts.password_matches(user, PASSWORD)
        assert user.totp_secret_encrypted is None
    [event] = events(app, "user.create")
    assert event.actor_id is None
    assert event.detail["user_id"] == str(user.id) and event.detail["role"] == "supervisor"
    assert PASSWORD not in str(event.detail)


def test_create_never_prompts_without_a_terminal(runner):
    result = runner.invoke(args=["users", "create", "a@example.org", "--role", "analyst"],
                           input="")
    assert result.exit_code == 1
    assert "stdin" in result.output


def test_create_refuses_a_short_password_and_stores_nothing(app, runner):
    result = create(runner, password="short pass")
    assert result.exit_code == 1
    assert "12 characters" in result.output
    with app.app_context():
        assert accounts.user_by_email("ana@example.org") is None
    assert events(app, "user.create") == []


def test_create_refuses_a_taken_email_and_an_unknown_role(runner):
    assert create(runner).exit_code == 0
    again = create(runner, "ANA@example.org")
    assert again.exit_code == 1 and "exists already" in again.output
    assert create(runner, "b@example.org", "boss").exit_code == 2


def test_create_admin_enrols_totp_at_once(app, runner):
    result = create(runner, "root@example.org", "admin")
    assert result.exit_code == 0, result.output
    uri = result.output.strip().splitlines()[-1]
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert "root%40example.org" in parsed.path or "root@example.org" in parsed.path
    secret = parse_qs(parsed.query)["secret"][0]
    with app.app_context():
        user = accounts.get_user("root@example.org")
        assert user.totp_enabled_at is not None
        assert secret.encode() not in user.totp_secret_encrypted


def test_token_prints_the_token_alone_on_the_last_line(app, client, runner):
    create(runner)
    result = runner.invoke(args=["users", "token", "ana@example.org", "--label", "script"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("stp_") and " " not in token
    response = client.get("/api/v1/triage/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    [event] = events(app, "user.token")
    assert event.detail["label"] == "script" and token not in str(event.detail)


def test_token_for_an_unknown_user_fails(runner):
    result = runner.invoke(args=["users", "token", "nobody@example.org"])
    assert result.exit_code == 1 and "No user" in result.output


def test_revoke_token_revokes_every_token(app, client, runner):
    create(runner)
    tokens = [runner.invoke(args=["users", "token", "ana@example.org"]).output.split()[-1]
              for _ in range(2)]
    result = runner.invoke(args=["users", "revoke-token", "ana@example.org"])
    assert result.exit_code == 0 and "revoked 2 token(s)" in result.output
    for token in tokens:
        response = client.get("/api/v1/triage/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
    [event] = events(app, "user.revoke_tokens")
    assert event.detail["count"] == 2


def test_deactivate_refuses_tokens_and_new_tokens(app, client, runner):
    create(runner)
    token = runner.invoke(args=["users", "token", "ana@example.org"]).output.split()[-1]
    result = runner.invoke(args=["users", "deactivate", "ana@example.org"])
    assert result.exit_code == 0, result.output
    response = client.get("/api/v1/triage/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    with app.app_context():
        assert not accounts.get_user("ana@example.org").active
        assert db.session.scalar(select(ApiToken.revoked_at)) is not None
    again = runner.invoke(args=["users", "token", "ana@example.org"])
    assert again.exit_code == 1 and "deactivated" in again.output
    [event] = events(app, "user.deactivate")
    assert event.detail["tokens_revoked"] == 1


def test_totp_enrols_and_replaces_the_secret(app, runner):
    create(runner)
    first = runner.invoke(args=["users", "totp", "ana@example.org"])
    assert first.exit_code == 0, first.output
    assert first.output.strip().splitlines()[-1].startswith("otpauth://totp/STOP%20APP:")
    second = runner.invoke(args=["users", "totp", "ana@example.org"])
    assert second.output.splitlines()[-1] != first.output.splitlines()[-1]
    assert [e.detail["replaced"] for e in events(app, "user.totp")] == [False, True]
