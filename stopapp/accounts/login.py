"""Signing in to the web pages: password, TOTP, and the limits on guessing.

The rules (the pages' login view calls `sign_in`; the API takes bearer tokens instead):

- Failed attempts are counted per account (columns on `users`) and per client (a Redis hash
  keyed by a keyed hash of the client address, never the address itself). After a few failures
  each new attempt must wait, twice as long each time (1 s, 2 s, 4 s ... at most 60 s), and
  after more it is locked out for 15 minutes (see ACCOUNT and CLIENT below). An attempt that
  comes too early is refused at once with the time to wait: nothing ever sleeps, so a worker
  thread is never held. A success clears the account's count, not the client's (one good
  account must not reset a client that is spraying guesses at others).
- Unknown emails cost the same as known ones: a dummy argon2 hash is checked, and their
  failures are counted too (in Redis, by a keyed hash of the email), so neither the time taken
  nor the delays tell whether an account exists. Inactive accounts behave like wrong passwords.
- TOTP (totp.py): a user who enrolled must give a valid, unused code. Admins must have enrolled:
  an admin without TOTP is refused until enrolled. Bootstrap: `flask users create --role admin`
  enrols at once and prints the otpauth:// URI; `flask users totp EMAIL` (re-)enrols anyone.
  Both need the server's shell, which is the trust root anyway.
- Redis down: the per-client count is unavailable, so the per-account rule tightens instead
  (a wait from the first failure, DEGRADED_ACCOUNT) and sign-in keeps working on PostgreSQL
  alone. Failing closed would lock every analyst out during an outage; failing fully open would
  let one client spray guesses across all accounts at full speed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2.exceptions import VerificationError
from redis.exceptions import RedisError
from sqlalchemy import select

from stopapp.accounts.models import Role, User
from stopapp.accounts.services import normalise_email, password_hasher, password_matches
from stopapp.accounts.totp import check_totp, has_totp
from stopapp.audit.services import record
from stopapp.db import unit_of_work
from stopapp.errors import ProblemError, TooManyRequestsError
from stopapp.extensions import db, redis_client, settings
from stopapp.reports.models import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    """After `delay_after` failures an attempt must wait 1 s, doubling up to `max_delay_s`;
    from `lock_after` failures it must wait `lockout_s` after the last failure."""

    delay_after: int
    lock_after: int
    lockout_s: int = 15 * 60
    max_delay_s: int = 60

    def wait_s(self, failures: int, last_failed_at: datetime | None, now: datetime) -> float:
        """Seconds still to wait before another attempt may be checked (0: go ahead)."""
        if last_failed_at is None or failures < self.delay_after:
            return 0.0
        if failures >= self.lock_after:
            wait = self.lockout_s
        else:
            wait = min(2 ** (failures - self.delay_after), self.max_delay_s)
        return max(0.0, (last_failed_at - now).total_seconds() + wait)


ACCOUNT = Policy(delay_after=3, lock_after=10)
# Many people can share one address (an office, a mobile carrier's NAT): be more lenient.
CLIENT = Policy(delay_after=10, lock_after=50)
DEGRADED_ACCOUNT = Policy(delay_after=1, lock_after=10)
# Failures further apart than this are forgotten (accounts; Redis keys expire after it too).
FAILURE_MEMORY = timedelta(hours=24)


class LoginError(ProblemError):
    """Base of the sign-in refusals. The page shows `detail` as the form's message."""


class LoginFailedError(LoginError):
    status = 401
    title = "Sign-in failed"
    type_slug = "login-failed"

    def __init__(self) -> None:
        super().__init__("The email, password or code is not right.")


class LoginThrottledError(LoginError, TooManyRequestsError):
    """Too many failures: refused without checking the password until `retry_after_s` passed."""

    title = "Too many failed sign-ins"
    type_slug = "login-throttled"

    def __init__(self, wait_s: float, *, locked: bool, per_client: bool) -> None:
        seconds = max(1, int(wait_s + 0.999))
        who = "from this network" if per_client else "for this account"
        if locked:
            minutes = (seconds + 59) // 60
            detail = (f"Too many failed sign-ins {who}: signing in is blocked for "
                      f"{minutes} more minute{'s' if minutes != 1 else ''}.")
        else:
            detail = (f"Too many failed sign-ins {who}. Wait {seconds} "
                      f"second{'s' if seconds != 1 else ''}, then try again.")
        TooManyRequestsError.__init__(self, detail, retry_after_s=seconds)
        self.locked = locked
        self.per_client = per_client


class TotpRequiredError(LoginError):
    """The password was right; the account also needs its authenticator code."""

    status = 401
    title = "Code required"
    type_slug = "totp-required"

    def __init__(self) -> None:
        super().__init__("Enter the 6-digit code from your authenticator app.")


class TotpEnrolmentRequiredError(LoginError):
    """An admin without a second factor may not sign in to the pages."""

    status = 403
    title = "Second factor required"
    type_slug = "totp-enrolment-required"

    def __init__(self) -> None:
        super().__init__(
            "Admins must use an authenticator app. Ask another admin to reset yours on the "
            "admin pages (or whoever runs the server to run `flask users totp YOUR-EMAIL`) and "
            "give you the QR code it shows, then sign in again."
        )


@functools.lru_cache(maxsize=4)
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    return password_hasher().hash("not anybody's password")


def _burn_password_check(password: str) -> None:
    """Spend what checking a real password costs, for unknown emails."""
    config = settings()
    try:
        password_hasher().verify(
            _dummy_hash(int(config.PASSWORD_TIME_COST), int(config.PASSWORD_MEMORY_KIB)), password
        )
    except VerificationError:
        pass


class _RedisFailures:
    """Failures counted in Redis under a keyed hash of `value` (a client address, an email).

    Every method answers None or does nothing when Redis cannot be reached.
    """

    def __init__(self, kind: str, value: str) -> None:
        secret = settings().SECRET_KEY.encode()
        digest = hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]
        self.key = f"login:{kind}:{digest}"

    def read(self) -> tuple[int, datetime | None] | None:
        try:
            failures, last = redis_client().hmget(self.key, "failures", "last")
        except RedisError:
            log.warning("sign-in: Redis unavailable; per-client limits are off, "
                        "per-account limits tightened")
            return None
        if failures is None or last is None:
            return 0, None
        return int(failures), datetime.fromtimestamp(float(last), tz=UTC)

    def add(self, now: datetime) -> None:
        try:
            pipe = redis_client().pipeline()
            pipe.hincrby(self.key, "failures", 1)
            pipe.hset(self.key, "last", now.timestamp())
            pipe.expire(self.key, int(FAILURE_MEMORY.total_seconds()))
            pipe.execute()
        except RedisError:
            pass


def _record_failure(user: User | None, email_count: _RedisFailures, now: datetime,
                    policy: Policy) -> None:
    if user is None:
        email_count.add(now)
        return
    user.failed_logins = _account_failures(user, now) + 1
    user.last_failed_login_at = now
    if user.failed_logins >= policy.lock_after:
        user.locked_until = now + timedelta(seconds=policy.lockout_s)
        if user.failed_logins == policy.lock_after:
            record(None, "user.lockout",
                   detail={"user_id": str(user.id), "failures": user.failed_logins})


def _account_failures(user: User, now: datetime) -> int:
    last = user.last_failed_login_at
    if last is None or now - last > FAILURE_MEMORY:
        return 0
    return user.failed_logins


def authenticate(
    email: str,
    password: str,
    totp_code: str | None,
    client_key: str,
    *,
    now: datetime | None = None,
) -> User:
    """The active user with this email, password and (when enrolled) TOTP code.

    `client_key` identifies the client (its address); only a keyed hash of it reaches Redis.
    The failure bookkeeping is written to the session before a refusal is raised, so the
    caller must COMMIT even when this raises: use `sign_in`, which does.

    Raises LoginThrottledError (429, with the seconds to wait) before checking anything when
    the account or the client must wait, LoginFailedError (401) for a wrong email, password or
    code, TotpRequiredError (401) when the password was right but the code is missing, and
    TotpEnrolmentRequiredError (403) for an admin without TOTP.
    """
    now = now or utcnow()
    email = normalise_email(email)
    client_count = _RedisFailures("client", client_key)
    email_count = _RedisFailures("email", email)
    client_state = client_count.read()
    # Read for known emails too, so that both paths make the same round trips.
    email_state = email_count.read()
    degraded = client_state is None
    policy = DEGRADED_ACCOUNT if degraded else ACCOUNT

    if client_state is not None:
        wait = CLIENT.wait_s(*client_state, now)
        if wait > 0:
            raise LoginThrottledError(
                wait, locked=client_state[0] >= CLIENT.lock_after, per_client=True
            )

    user = db.session.scalar(select(User).where(User.email == email).with_for_update())
    if user is not None:
        failures, last = _account_failures(user, now), user.last_failed_login_at
    else:
        failures, last = email_state or (0, None)
    wait = policy.wait_s(failures, last, now)
    if wait > 0:
        raise LoginThrottledError(wait, locked=failures >= policy.lock_after, per_client=False)

    if user is None:
        _burn_password_check(password)
        ok = False
    else:
        ok = password_matches(user, password) and user.active
    if ok and has_totp(user):
        if not totp_code:
            raise TotpRequiredError()
        ok = check_totp(user, totp_code, now)
    if not ok:
        _record_failure(user, email_count, now, policy)
        client_count.add(now)
        db.session.flush()
        raise LoginFailedError()
    if user.role_enum is Role.ADMIN and not has_totp(user):
        raise TotpEnrolmentRequiredError()

    user.failed_logins = 0
    user.last_failed_login_at = None
    user.locked_until = None
    db.session.flush()
    return user


def sign_in(
    email: str,
    password: str,
    totp_code: str | None,
    client_key: str,
    *,
    now: datetime | None = None,
) -> User:
    """`authenticate` in its own unit of work, committed whether it succeeds or is refused
    (a refusal must still count). For the edges: the pages' login view calls this.

    Raises what `authenticate` raises, after committing.
    """
    refusal: LoginError | None = None
    with unit_of_work():
        try:
            user = authenticate(email, password, totp_code, client_key, now=now)
        except LoginError as exc:
            refusal = exc
    if refusal is not None:
        raise refusal
    return user
