"""The admins' account services: changing roles, resetting a second factor, reactivating, and
never leaving the system without an active admin."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select

from stopapp.accounts import services as accounts
from stopapp.accounts.login import TotpEnrolmentRequiredError, authenticate
from stopapp.accounts.models import User
from stopapp.accounts.totp import has_totp
from stopapp.audit.models import AuditEvent
from stopapp.errors import ConflictError, ForbiddenError, ValidationError
from stopapp.extensions import db

PASSWORD = "correct horse battery"


def user(email: str, role: str = "analyst") -> User:
    return accounts.create_user(email, role, PASSWORD, name=email.split("@")[0].title())


def admin(email: str = "root@example.org") -> User:
    created, _ = accounts.add_user(None, email, "admin", PASSWORD, name="Root")
    return created


def last_event(action: str) -> AuditEvent:
    return db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
    ).first()


def test_change_role_promotes_and_records_who_did_it(app):
    root, ana = admin(), user("ana@example.org")
    assert accounts.change_role(root, ana, "supervisor") is None
    assert ana.role == "supervisor"
    event = last_event("user.role")
    assert event.actor_id == root.id
    assert event.detail == {"user_id": str(ana.id), "from": "analyst", "to": "supervisor",
                            "totp": False}


def test_promoting_to_admin_sets_up_an_authenticator_so_they_can_sign_in(app):
    root, ana = admin(), user("ana@example.org")
    uri = accounts.change_role(root, ana, "admin")
    assert uri.startswith("otpauth://totp/") and has_totp(ana)
    code = pyotp.parse_uri(uri).now()
    assert authenticate("ana@example.org", PASSWORD, code, "client").id == ana.id


def test_promoting_someone_with_an_authenticator_keeps_it(app):
    root, ana = admin(), user("ana@example.org")
    accounts.enrol_totp(None, ana)
    secret = ana.totp_secret_encrypted
    assert accounts.change_role(root, ana, "admin") is None
    assert ana.totp_secret_encrypted == secret


def test_unknown_role_is_refused(app):
    root, ana = admin(), user("ana@example.org")
    with pytest.raises(ValidationError) as refusal:
        accounts.change_role(root, ana, "owner")
    assert "role" in refusal.value.errors and ana.role == "analyst"


def test_only_admins_change_roles(app):
    boss, ana = user("boss@example.org", "supervisor"), user("ana@example.org")
    with pytest.raises(ForbiddenError):
        accounts.change_role(boss, ana, "supervisor")
    assert ana.role == "analyst"


def test_the_last_admin_cannot_demote_themselves(app):
    root = admin()
    with pytest.raises(ConflictError, match="only active admin"):
        accounts.change_role(root, root, "analyst")
    assert root.role == "admin" and last_event("user.role") is None


def test_an_admin_may_step_down_when_another_admin_remains(app):
    root, other = admin(), admin("other@example.org")
    accounts.change_role(root, root, "supervisor")
    assert root.role == "supervisor" and other.role == "admin"


def test_deactivated_admins_do_not_count_as_remaining(app):
    root, other = admin(), admin("other@example.org")
    accounts.deactivate_user(root, other)
    with pytest.raises(ConflictError, match="only active admin"):
        accounts.change_role(root, root, "analyst")


def test_the_command_line_cannot_deactivate_the_last_admin(app):
    root = admin()
    with pytest.raises(ConflictError, match="only active admin"):
        accounts.deactivate_user(None, root)
    assert root.active


def test_reactivate_lets_them_back_and_clears_the_lockout(app):
    root, ana = admin(), user("ana@example.org")
    accounts.deactivate_user(root, ana)
    ana.failed_logins = 10
    accounts.reactivate_user(root, ana)
    assert ana.active and ana.failed_logins == 0 and ana.locked_until is None
    assert last_event("user.reactivate").detail == {"user_id": str(ana.id)}


def test_reset_totp_removes_an_analysts_second_factor(app):
    root, ana = admin(), user("ana@example.org")
    accounts.enrol_totp(None, ana)
    assert accounts.reset_totp(root, ana) is None
    assert ana.totp_secret_encrypted is None and not has_totp(ana)
    # The password alone is enough again.
    assert authenticate("ana@example.org", PASSWORD, None, "client").id == ana.id
    assert last_event("user.totp_reset").detail == {
        "user_id": str(ana.id), "had_totp": True, "new_secret": False,
    }


def test_reset_totp_of_an_admin_replaces_the_secret_and_never_lets_a_password_alone_in(app):
    root, other = admin(), admin("other@example.org")
    old_secret = other.totp_secret_encrypted
    uri = accounts.reset_totp(root, other)
    assert uri and has_totp(other) and other.totp_secret_encrypted != old_secret
    assert last_event("user.totp_reset").detail["new_secret"] is True
    code = pyotp.parse_uri(uri).now()
    assert authenticate("other@example.org", PASSWORD, code, "client").id == other.id


def test_an_admin_without_a_second_factor_is_still_refused_at_sign_in(app):
    user("boss@example.org", "admin")
    with pytest.raises(TotpEnrolmentRequiredError, match="Ask another admin to reset"):
        authenticate("boss@example.org", PASSWORD, None, "client")


def test_nobody_resets_their_own_authenticator(app):
    root = admin()
    with pytest.raises(ConflictError, match="ask another admin"):
        accounts.reset_totp(root, root)
    assert has_totp(root)


def test_reset_totp_with_nothing_to_reset_is_refused(app):
    root, ana = admin(), user("ana@example.org")
    with pytest.raises(ConflictError, match="no authenticator app"):
        accounts.reset_totp(root, ana)


def test_get_user_by_id_is_for_admins(app):
    boss, ana = user("boss@example.org", "supervisor"), user("ana@example.org")
    with pytest.raises(ForbiddenError):
        accounts.get_user_by_id(boss, ana.id)
    assert accounts.get_user_by_id(admin(), ana.id) is ana
