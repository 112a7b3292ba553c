"""Who may do what. Services call these; the API and the pages never decide on their own.

The table of STAFF_API.md in code: each role includes the rights of the roles before it.
"""

from __future__ import annotations

from stopapp.accounts.models import Role, User
from stopapp.errors import ForbiddenError, UnauthorizedError


def require_role(actor: User | None, role: Role) -> User:
    """Return `actor` if it is an active user with at least `role`.

    Raises UnauthorizedError without an active actor and ForbiddenError when the role is too low.
    """
    if actor is None or not actor.active:
        raise UnauthorizedError("Sign in, or send a valid API token.")
    if not actor.role_enum.includes(role):
        raise ForbiddenError(f"This needs the {role.value} role.")
    return actor


def require_staff(actor: User | None) -> User:
    """Any active member of staff (analyst or above)."""
    return require_role(actor, Role.ANALYST)
