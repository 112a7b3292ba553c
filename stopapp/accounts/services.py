"""Staff accounts and API tokens: creating users, hashing passwords, issuing and checking tokens.

Passwords are hashed with argon2id; API tokens are 256 random bits shown once and stored only
as their SHA-256 (a token has full entropy, so a fast hash is safe and a lookup is one index).
"""

from __future__ import annotations

import secrets
import uuid

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from stopapp.accounts.models import ApiToken, Role, User
from stopapp.errors import ConflictError, NotFoundError, ValidationError
from stopapp.extensions import db, settings
from stopapp.reports.models import utcnow
from stopapp.security import sha256

MIN_PASSWORD_CHARS = 12
TOKEN_PREFIX = "stp_"
# A token's last use is written at most this often, so that a busy script does not turn every
# read into a write.
LAST_USED_RESOLUTION_S = 60


def password_hasher() -> PasswordHasher:
    config = settings()
    return PasswordHasher(
        time_cost=int(config.PASSWORD_TIME_COST),
        memory_cost=int(config.PASSWORD_MEMORY_KIB),
        parallelism=1,
        type=Type.ID,
    )


def hash_password(password: str) -> str:
    """argon2id hash of `password`. Raises ValidationError when it is too short."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValidationError(
            f"A password needs at least {MIN_PASSWORD_CHARS} characters.",
            errors={"password": [f"At least {MIN_PASSWORD_CHARS} characters."]},
        )
    return password_hasher().hash(password)


def password_matches(user: User, password: str) -> bool:
    """Whether `password` is the user's; rehashes in place when the parameters changed."""
    hasher = password_hasher()
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return True


def normalise_email(email: str) -> str:
    return email.strip().lower()


def user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def get_user(email: str) -> User:
    """The user with `email`. Raises NotFoundError."""
    user = user_by_email(email)
    if user is None:
        raise NotFoundError("No user with this email.")
    return user


def create_user(email: str, role: Role | str, password: str, name: str | None = None) -> User:
    """Create a staff account. Raises ValidationError (bad role, short password) and
    ConflictError when the email is taken."""
    try:
        role = Role(role)
    except ValueError as exc:
        known = ", ".join(r.value for r in Role)
        raise ValidationError("Unknown role.", errors={"role": [f"One of {known}."]}) from exc
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise ValidationError("Not an email address.", errors={"email": ["Not an email address."]})
    if user_by_email(email) is not None:
        raise ConflictError("A user with this email exists already.")
    user = User(
        email=email,
        name=(name or email.split("@")[0]).strip()[:200],
        role=role.value,
        password_hash=hash_password(password),
        active=True,
        failed_logins=0,
    )
    db.session.add(user)
    db.session.flush()
    return user


def issue_token(user: User, label: str | None = None) -> tuple[ApiToken, str]:
    """A new API token for `user`: the row, and the token itself (shown once, never stored)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=sha256(token), label=label)
    db.session.add(row)
    db.session.flush()
    return row, token


def user_for_token(token: str | None) -> User | None:
    """The active user a bearer token belongs to, or None; records the token's last use."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == sha256(token), ApiToken.revoked_at.is_(None))
    )
    if row is None or not row.user.active:
        return None
    now = utcnow()
    last = row.last_used_at
    if last is None or (now - last).total_seconds() > LAST_USED_RESOLUTION_S:
        row.last_used_at = now
    return row.user


def revoke_token(user: User, token_id: uuid.UUID) -> None:
    """Revoke one of `user`'s tokens. Raises NotFoundError for a token that is not theirs."""
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFoundError("No such token.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    db.session.flush()


def revoke_all_tokens(user: User) -> int:
    """Revoke every live token of `user`; returns how many."""
    count = 0
    for row in user.tokens:
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            count += 1
    db.session.flush()
    return count
