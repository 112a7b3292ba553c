"""The sign-in rules (stopapp/accounts/login.py) on the real database and Redis.

Time is passed in as `now`, so waits are checked without sleeping.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from stopapp.accounts import services as accounts
from stopapp.accounts.login import (
    ACCOUNT,
    CLIENT,
    LoginFailedError,
    LoginThrottledError,
    TotpEnrolmentRequiredError,
    TotpRequiredError,
    sign_in,
)
from stopapp.accounts.models import User
from stopapp.audit.models import AuditEvent
from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.reports.models import utcnow
from tests.conftest import DEAD_REDIS_URL

PASSWORD = "correct horse battery staple"
WRONG = "wrong horse battery staple"
EMAIL = "ana@example.org"
CLIENT_ADDR = "203.0.113.7"


def make_user(app, email=EMAIL, role="analyst", totp=False) -> str | None:
    """Create a user; returns the TOTP secret when enrolled."""
    with app.app_context(), unit_of_work():
        user = accounts.create_user(email, role, PASSWORD)
        if totp:
            uri = accounts.enrol_totp(None, user)
            return parse_qs(urlparse(uri).query)["secret"][0]
    return None


def attempt(app, password=PASSWORD, *, email=EMAIL, code=None, client=CLIENT_ADDR, now=None):
    """Sign in; returns who signed in (plain values: the session ends with the attempt)."""
    with app.app_context():
        user = sign_in(email, password, code, client, now=now)
        return SimpleNamespace(email=user.email, role=user.role)


def stored(app, email=EMAIL) -> User:
    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


def test_right_password_signs_in_and_clears_the_count(app):
    make_user(app)
    now = utcnow()
    with pytest.raises(LoginFailedError):
        attempt(app, WRONG, now=now)
    assert stored(app).failed_logins == 1
    user = attempt(app, PASSWORD, email=" ANA@example.org ", now=now)
    assert user.email == EMAIL
    assert stored(app).failed_logins == 0 and stored(app).last_failed_login_at is None


def test_failures_are_committed_although_the_attempt_is_refused(app):
    make_user(app)
    with pytest.raises(LoginFailedError) as refused:
        attempt(app, WRONG)
    assert refused.value.status == 401
    assert refused.value.detail == "The email, password or code is not right."
    user = stored(app)
    assert user.failed_logins == 1 and user.last_failed_login_at is not None


def test_delay_doubles_after_three_failures_and_refuses_without_checking(app):
    make_user(app)
    now = utcnow()
    for _ in range(ACCOUNT.delay_after):
        with pytest.raises(LoginFailedError):
            attempt(app, WRONG, now=now)
    waits = []
    for _ in range(4):
        # Even the right password is refused while the wait runs, and that does not count.
        with pytest.raises(LoginThrottledError) as early:
            attempt(app, PASSWORD, now=now)
        assert early.value.status == 429 and not early.value.locked
        assert "Wait" in early.value.detail
        waits.append(early.value.retry_after_s)
        now += timedelta(seconds=early.value.retry_after_s)
        with pytest.raises(LoginFailedError):
            attempt(app, WRONG, now=now)
    assert waits == [1, 2, 4, 8]
    assert early.value.headers["Retry-After"] == "8"
    assert stored(app).failed_logins == ACCOUNT.delay_after + 4


def test_lockout_after_ten_failures_then_the_right_password_works_again(app):
    make_user(app)
    now = utcnow()
    for _ in range(ACCOUNT.lock_after):
        now += timedelta(seconds=ACCOUNT.max_delay_s)
        with pytest.raises(LoginFailedError):
            attempt(app, WRONG, now=now)
    user = stored(app)
    assert user.locked_until == now + timedelta(seconds=ACCOUNT.lockout_s)
    with pytest.raises(LoginThrottledError) as locked:
        attempt(app, PASSWORD, now=now + timedelta(minutes=14))
    assert locked.value.locked and "blocked for 1 more minute" in locked.value.detail
    assert attempt(app, PASSWORD, now=now + timedelta(minutes=15)).email == EMAIL
    assert stored(app).locked_until is None
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "user.lockout",
            AuditEvent.detail["user_id"].astext == str(user.id)))
        assert event.detail == {"user_id": str(user.id), "failures": ACCOUNT.lock_after}


def test_old_failures_are_forgotten(app):
    make_user(app)
    now = utcnow()
    for _ in range(ACCOUNT.delay_after + 2):
        now += timedelta(seconds=ACCOUNT.max_delay_s)
        with pytest.raises(LoginFailedError):
            attempt(app, WRONG, now=now)
    with pytest.raises(LoginFailedError):
        attempt(app, WRONG, now=now + timedelta(days=2))
    assert stored(app).failed_logins == 1


def test_unknown_email_is_refused_and_delayed_like_a_known_one(app, redis_conn):
    make_user(app)
    now = utcnow()
    refusals = {}
    for email in (EMAIL, "nobody@example.org"):
        for _ in range(ACCOUNT.delay_after):
            with pytest.raises(LoginFailedError) as failed:
                attempt(app, WRONG, email=email, client=f"client-{email}", now=now)
        with pytest.raises(LoginThrottledError) as throttled:
            attempt(app, WRONG, email=email, client=f"client-{email}", now=now)
        refusals[email] = (failed.value.detail, throttled.value.detail)
    assert refusals[EMAIL] == refusals["nobody@example.org"]
    # Neither the email nor the client address reaches Redis, only keyed hashes of them.
    keys = b" ".join(redis_conn.keys("login:*"))
    assert b"nobody" not in keys and b"client-" not in keys and b"203.0" not in keys


def test_inactive_user_with_the_right_password_is_refused_like_a_wrong_one(app):
    make_user(app)
    with app.app_context(), unit_of_work():
        accounts.deactivate_user(None, accounts.get_user(EMAIL))
    with pytest.raises(LoginFailedError):
        attempt(app)


def test_one_client_is_locked_out_across_accounts_others_are_not(app):
    make_user(app)
    now = utcnow()
    # A client spraying guesses at many (unknown) accounts, slowly enough for each account.
    for number in range(CLIENT.lock_after):
        now += timedelta(seconds=CLIENT.max_delay_s)
        with pytest.raises(LoginFailedError):
            attempt(app, WRONG, email=f"guess{number}@example.org", now=now)
    with pytest.raises(LoginThrottledError) as locked:
        attempt(app, PASSWORD, now=now + timedelta(seconds=1))
    assert locked.value.locked and locked.value.per_client
    assert "from this network" in locked.value.detail
    assert attempt(app, PASSWORD, client="198.51.100.1", now=now).email == EMAIL
    # The spraying client's own success does not clear its count.
    with pytest.raises(LoginThrottledError):
        attempt(app, PASSWORD, now=now + timedelta(seconds=2))


def test_client_delay_starts_after_ten_failures(app):
    now = utcnow()
    for number in range(CLIENT.delay_after):
        with pytest.raises(LoginFailedError):
            attempt(app, WRONG, email=f"g{number}@example.org", now=now)
    with pytest.raises(LoginThrottledError) as early:
        attempt(app, WRONG, email="fresh@example.org", now=now)
    assert early.value.per_client and early.value.retry_after_s == 1


def test_totp_is_required_once_enrolled(app):
    secret = make_user(app, totp=True)
    now = utcnow()
    with pytest.raises(TotpRequiredError):
        attempt(app, now=now)
    assert stored(app).failed_logins == 0
    with pytest.raises(LoginFailedError):
        attempt(app, code="000000" if pyotp.TOTP(secret).at(now) != "000000" else "111111",
                now=now)
    assert stored(app).failed_logins == 1
    assert attempt(app, code=pyotp.TOTP(secret).at(now), now=now).email == EMAIL


def test_a_wrong_password_with_the_right_code_fails_without_using_the_code(app):
    secret = make_user(app, totp=True)
    now = utcnow()
    code = pyotp.TOTP(secret).at(now)
    with pytest.raises(LoginFailedError):
        attempt(app, WRONG, code=code, now=now)
    assert attempt(app, code=code, now=now).email == EMAIL


def test_a_code_is_accepted_once_and_never_an_earlier_one(app):
    secret = make_user(app, totp=True)
    totp = pyotp.TOTP(secret)
    now = utcnow()
    attempt(app, code=totp.at(now), now=now)
    with pytest.raises(LoginFailedError):
        attempt(app, code=totp.at(now), now=now + timedelta(seconds=1))
    later = now + timedelta(seconds=30)
    # The previous step is inside the window but older than the one used: refused too.
    with pytest.raises(LoginFailedError):
        attempt(app, code=totp.at(now), now=later)
    assert attempt(app, code=totp.at(later), now=later).email == EMAIL


def test_codes_one_step_either_side_are_accepted_two_are_not(app):
    secret = make_user(app, totp=True)
    totp = pyotp.TOTP(secret)
    now = utcnow()
    with pytest.raises(LoginFailedError):
        attempt(app, code=totp.at(now - timedelta(seconds=60)), now=now)
    assert attempt(app, code=totp.at(now - timedelta(seconds=30)), now=now)
    assert attempt(app, code=totp.at(now + timedelta(seconds=30)), now=now)
    assert attempt(app, code=" ".join(totp.at(now + timedelta(seconds=60))[i:i + 3]
                                      for i in (0, 3)), now=now + timedelta(seconds=60))


def test_admin_without_totp_cannot_sign_in_until_enrolled(app):
    make_user(app, "root@example.org", "admin")
    with pytest.raises(LoginFailedError):
        attempt(app, WRONG, email="root@example.org")
    with pytest.raises(TotpEnrolmentRequiredError) as refused:
        attempt(app, email="root@example.org")
    assert refused.value.status == 403 and "flask users totp" in refused.value.detail
    with app.app_context(), unit_of_work():
        uri = accounts.enrol_totp(None, accounts.get_user("root@example.org"))
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    assert attempt(app, email="root@example.org", code=pyotp.TOTP(secret).now()).role == "admin"


def test_redis_down_sign_in_works_and_the_account_delay_starts_at_once(make_app):
    app = make_app(REDIS_URL=DEAD_REDIS_URL)
    make_user(app)
    now = utcnow()
    with pytest.raises(LoginFailedError):
        attempt(app, WRONG, now=now)
    with pytest.raises(LoginThrottledError) as early:
        attempt(app, PASSWORD, now=now)
    assert early.value.retry_after_s == 1
    assert attempt(app, now=now + timedelta(seconds=1)).email == EMAIL


def test_totp_secret_survives_key_rotation(make_app):
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app_a = make_app(DATA_ENCRYPTION_KEY=key_a)
    secret = make_user(app_a, totp=True)
    rotating = make_app(DATA_ENCRYPTION_KEY=f"{key_b},{key_a}")
    result = rotating.test_cli_runner().invoke(args=["rotate-contact-keys"])
    assert "1 TOTP secret(s)" in result.output, result.output
    app_b = make_app(DATA_ENCRYPTION_KEY=key_b)
    assert attempt(app_b, code=pyotp.TOTP(secret).now()).email == EMAIL


def test_unknown_email_costs_as_much_as_a_wrong_password(make_app):
    # A real argon2 cost (a quarter of production's memory), so that the hash dominates: without
    # the dummy hash an unknown email answers in a fraction of the time.
    app = make_app(PASSWORD_TIME_COST=2, PASSWORD_MEMORY_KIB=16384)
    make_user(app)
    timings: dict[str, list[float]] = {EMAIL: [], "nobody@example.org": []}
    for round_ in range(5):
        for email in timings:
            start = time.perf_counter()
            with pytest.raises(LoginFailedError):
                # A different client each time and a long gap: no delay gets in the way.
                attempt(app, WRONG, email=email, client=f"c{round_}",
                        now=utcnow() + timedelta(minutes=round_))
            timings[email].append(time.perf_counter() - start)
    known, unknown = (statistics.median(t) for t in timings.values())
    assert 0.7 < unknown / known < 1.4, (known, unknown)
