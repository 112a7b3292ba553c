"""Staff accounts and API tokens: creating users, hashing passwords, issuing and checking tokens.

Passwords are hashed with argon2id; API tokens are 256 random bits shown once and stored only
as their SHA-256 (a token has full entropy, so a fast hash is safe and a lookup is one index).
"""

from __future__ import annotations

import secrets
import uuid

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from stopapp.accounts.models import ApiToken, Role, User
from stopapp.accounts.permissions import require_role, require_staff
from stopapp.accounts.totp import has_totp, set_up_totp
from stopapp.audit.services import record
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
    # The user comes in the same statement: every staff request starts here.
    row = db.session.scalar(
        select(ApiToken)
        .options(joinedload(ApiToken.user))
        .where(ApiToken.token_hash == sha256(token), ApiToken.revoked_at.is_(None))
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


# Managing accounts. Each change writes an audit event in the caller's unit of work. `actor` is
# the admin who acts, or None for the command line (`flask users ...`), whose operator already
# holds the server's shell and secrets; the API and the pages always pass a user.


def _require_admin(actor: User | None) -> None:
    if actor is not None:
        require_role(actor, Role.ADMIN)


def add_user(
    actor: User | None, email: str, role: Role | str, password: str, name: str | None = None
) -> tuple[User, str | None]:
    """Create a staff account (audited as `user.create`).

    An admin gets a TOTP secret at once, since the pages refuse admins without one: the second
    value is its otpauth:// URI (None for other roles). Raises what `create_user` raises, and
    ForbiddenError when `actor` is not an admin.
    """
    _require_admin(actor)
    user = create_user(email, role, password, name=name)
    uri = set_up_totp(user) if user.role_enum is Role.ADMIN else None
    record(actor, "user.create", detail={
        "user_id": str(user.id), "email": user.email, "role": user.role, "totp": uri is not None,
    })
    db.session.flush()
    return user, uri


def add_token(actor: User | None, user: User, label: str | None = None) -> tuple[ApiToken, str]:
    """A new API token for `user` (audited as `user.token`); the token is shown once.

    Raises ConflictError for a deactivated user and ForbiddenError when `actor` is not an admin.
    """
    _require_admin(actor)
    if not user.active:
        raise ConflictError("This user is deactivated.")
    if label is not None and len(label) > 200:
        raise ValidationError(
            "The label is too long.", errors={"label": ["At most 200 characters."]}
        )
    row, token = issue_token(user, label)
    record(actor, "user.token", detail={
        "user_id": str(user.id), "token_id": str(row.id), "label": label,
    })
    return row, token


def revoke_tokens(actor: User | None, user: User) -> int:
    """Revoke all of `user`'s tokens (audited as `user.revoke_tokens`); returns how many."""
    _require_admin(actor)
    count = revoke_all_tokens(user)
    record(actor, "user.revoke_tokens", detail={"user_id": str(user.id), "count": count})
    return count


def deactivate_user(actor: User | None, user: User) -> None:
    """Deactivate `user` and revoke their tokens (audited as `user.deactivate`).

    The row stays: notes, replies and the audit trail name it. Raises ConflictError when the
    actor would deactivate themselves or the last active admin (an admin cannot lock the last
    door behind them).
    """
    _require_admin(actor)
    if actor is not None and actor.id == user.id:
        raise ConflictError("You cannot deactivate your own account.")
    if user.active and user.role_enum is Role.ADMIN:
        _check_an_admin_remains(user)
    was_active = user.active
    user.active = False
    count = revoke_all_tokens(user)
    record(actor, "user.deactivate", detail={
        "user_id": str(user.id), "was_active": was_active, "tokens_revoked": count,
    })


def enrol_totp(actor: User | None, user: User) -> str:
    """Give `user` a new TOTP secret (audited as `user.totp`); returns the otpauth:// URI.

    The URI holds the secret: hand it to its owner only. Re-enrolling replaces the old secret.
    """
    _require_admin(actor)
    if not user.active:
        raise ConflictError("This user is deactivated.")
    replaced = user.totp_secret_encrypted is not None
    uri = set_up_totp(user)
    record(actor, "user.totp", detail={"user_id": str(user.id), "replaced": replaced})
    db.session.flush()
    return uri


def list_users(actor: User) -> tuple[list[User], bool]:
    """Staff for choosing an assignee: active users, by name (any member of staff).

    Admins see inactive users too. Returns the users and whether the admin view applies (the
    edges then show emails and the active flag). Raises UnauthorizedError.
    """
    require_staff(actor)
    admin_view = actor.role_enum.includes(Role.ADMIN)
    query = select(User).order_by(func.lower(User.name), User.email)
    if not admin_view:
        query = query.where(User.active.is_(True))
    return list(db.session.scalars(query)), admin_view


def get_user_by_id(actor: User | None, user_id: uuid.UUID) -> User:
    """One staff account, for an admin to look at or change.

    Raises UnauthorizedError, ForbiddenError below admin, NotFoundError.
    """
    _require_admin(actor)
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFoundError("No user with this id.")
    return user


def _check_an_admin_remains(user: User) -> None:
    """Refuse a change that would leave no active admin once `user` stops being one.

    The active admins' rows are locked in id order, so that two admins demoting each other at
    the same moment are serialised: the second sees the first's change and is refused.
    """
    admins = db.session.scalars(
        select(User.id)
        .where(User.role == Role.ADMIN.value, User.active.is_(True))
        .order_by(User.id)
        .with_for_update()
    ).all()
    if not [admin_id for admin_id in admins if admin_id != user.id]:
        raise ConflictError(
            f"{user.name} is the only active admin: make another user an admin first, so that "
            "someone can still manage accounts."
        )


def _require_active(user: User) -> None:
    if not user.active:
        raise ConflictError(f"{user.name}'s account is deactivated: reactivate it first.")


def change_role(actor: User | None, user: User, role: Role | str) -> str | None:
    """Give `user` another role (audited as `user.role`).

    A new admin without a working second factor gets a TOTP secret at once (sign-in refuses
    admins without one): its otpauth:// URI is returned, to be handed to them once; otherwise
    None. Demoting the last active admin is refused. Raises ValidationError (unknown role),
    ConflictError (deactivated user, last admin) and ForbiddenError below admin.
    """
    _require_admin(actor)
    try:
        new = Role(role)
    except ValueError as exc:
        known = ", ".join(r.value for r in Role)
        raise ValidationError("Unknown role.", errors={"role": [f"One of {known}."]}) from exc
    _require_active(user)
    old = user.role_enum
    if new is old:
        return None
    if old is Role.ADMIN:
        _check_an_admin_remains(user)
    uri = set_up_totp(user) if new is Role.ADMIN and not has_totp(user) else None
    user.role = new.value
    record(actor, "user.role", detail={
        "user_id": str(user.id), "from": old.value, "to": new.value, "totp": uri is not None,
    })
    db.session.flush()
    return uri


def reactivate_user(actor: User | None, user: User) -> None:
    """Let a deactivated user sign in again (audited as `user.reactivate`).

    Their API tokens stay revoked and failed sign-ins are forgotten. Reactivating an active
    user changes nothing. Raises ForbiddenError below admin.
    """
    _require_admin(actor)
    if user.active:
        return
    user.active = True
    user.failed_logins = 0
    user.last_failed_login_at = None
    user.locked_until = None
    record(actor, "user.reactivate", detail={"user_id": str(user.id)})
    db.session.flush()


def reset_totp(actor: User | None, user: User) -> str | None:
    """Remove `user`'s second factor (audited as `user.totp_reset`), e.g. after a lost phone.

    Analysts and supervisors then sign in with their password alone and may set up an app
    again on their account page; None is returned. Admins are never left without a second
    factor (sign-in would let a stolen password in, or lock them out): they get a new secret at
    once and its otpauth:// URI is returned, to be handed to them in person; their next sign-in
    needs a code from it. Nobody resets their own (ask another admin).

    Raises ConflictError (own account, deactivated user, nothing to reset) and ForbiddenError
    below admin.
    """
    _require_admin(actor)
    if actor is not None and actor.id == user.id:
        raise ConflictError("You cannot reset your own authenticator app: ask another admin.")
    _require_active(user)
    had_secret = user.totp_secret_encrypted is not None
    admin = user.role_enum is Role.ADMIN
    if not had_secret and not admin:
        raise ConflictError(f"{user.name} has no authenticator app to reset.")
    user.totp_secret_encrypted = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    uri = set_up_totp(user) if admin else None
    record(actor, "user.totp_reset", detail={
        "user_id": str(user.id), "had_totp": had_secret, "new_secret": uri is not None,
    })
    db.session.flush()
    return uri
