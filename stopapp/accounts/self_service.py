"""What a member of staff may do to their own account: API tokens and their TOTP second factor.

The account page calls these. Each change is audited in the caller's unit of work.

Enrolling TOTP takes two steps so that a mistyped scan never locks anyone out: the new secret
is stored (encrypted) without `totp_enabled_at`, which sign-in ignores, and is switched on only
when its owner proves it works by giving a code from it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from stopapp.accounts.models import ApiToken, User
from stopapp.accounts.permissions import require_staff
from stopapp.accounts.services import issue_token, revoke_token
from stopapp.accounts.totp import check_totp, has_totp, set_up_totp
from stopapp.audit.services import record
from stopapp.errors import ConflictError, ValidationError
from stopapp.extensions import db
from stopapp.reports.models import utcnow

MAX_LABEL_CHARS = 200


def own_tokens(actor: User) -> list[ApiToken]:
    """The caller's live (unrevoked) API tokens, newest first. Raises UnauthorizedError."""
    require_staff(actor)
    return list(db.session.scalars(
        select(ApiToken)
        .where(ApiToken.user_id == actor.id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at.desc(), ApiToken.id)
    ))


def create_own_token(actor: User, label: str) -> tuple[ApiToken, str]:
    """A new API token for the caller (audited as `user.token`): the row and the token, which
    is shown once and never stored. Raises UnauthorizedError and ValidationError (label)."""
    require_staff(actor)
    label = (label or "").strip()
    if not label or len(label) > MAX_LABEL_CHARS:
        raise ValidationError("Give the token a name.", errors={
            "label": [f"Name the token (at most {MAX_LABEL_CHARS} characters): what will use it?"]
        })
    row, token = issue_token(actor, label)
    record(actor, "user.token",
           detail={"user_id": str(actor.id), "token_id": str(row.id), "label": label})
    return row, token


def revoke_own_token(actor: User, token_id: uuid.UUID) -> None:
    """Revoke one of the caller's tokens (audited as `user.revoke_token`).

    Raises UnauthorizedError, and NotFoundError for a token that is not the caller's.
    """
    require_staff(actor)
    revoke_token(actor, token_id)
    record(actor, "user.revoke_token",
           detail={"user_id": str(actor.id), "token_id": str(token_id)})


def _locked(actor: User) -> User:
    return db.session.scalar(select(User).where(User.id == actor.id).with_for_update())


def start_totp_enrolment(actor: User) -> str:
    """A new, not yet active TOTP secret for the caller; returns its otpauth:// URI (show it to
    the caller only, once). Starting again replaces a secret that was never confirmed.

    Raises UnauthorizedError, and ConflictError when the caller has a working second factor
    already (replacing it is an admin's job: `flask users totp`).
    """
    require_staff(actor)
    user = _locked(actor)
    if has_totp(user):
        raise ConflictError(
            "You have an authenticator app set up already. To move it to a new phone, ask an "
            "admin to reset it."
        )
    uri = set_up_totp(user)
    # Stored, but not active until confirmed (see the module's docstring).
    user.totp_enabled_at = None
    db.session.flush()
    return uri


def totp_pending(actor: User) -> bool:
    """Whether the caller started enrolling and has not confirmed yet."""
    return actor.totp_secret_encrypted is not None and actor.totp_enabled_at is None


def confirm_totp_enrolment(actor: User, code: str) -> None:
    """Switch the caller's new secret on if `code` is a valid code of it (audited as
    `user.totp`); from then on signing in asks for a code.

    Raises UnauthorizedError, ConflictError when there is nothing to confirm, and
    ValidationError (naming `code`) for a wrong code.
    """
    require_staff(actor)
    user = _locked(actor)
    if not totp_pending(user):
        raise ConflictError("There is no new authenticator app to confirm: start again.")
    now = utcnow()
    # check_totp accepts codes of active secrets only, and records the code's step so that it
    # cannot be used again to sign in.
    user.totp_enabled_at = now
    if not check_totp(user, code, now):
        user.totp_enabled_at = None
        raise ValidationError("That code is not right.", errors={
            "code": ["Enter the 6-digit code your app shows now for STOP APP."]
        })
    record(actor, "user.totp",
           detail={"user_id": str(actor.id), "replaced": False, "self_service": True})
    db.session.flush()
