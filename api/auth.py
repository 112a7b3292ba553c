"""Who is calling the staff API: `Authorization: Bearer <token>`, nothing else (no cookies, so
no CSRF here). Role checks are not made here but in the services, which take the actor."""

from __future__ import annotations

from flask import request

from stopapp.accounts import services as accounts
from stopapp.accounts.models import User
from stopapp.errors import UnauthorizedError


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_actor() -> User:
    """The staff member whose token came with the request (looked up once per request).

    Call it inside the request's unit of work (it may record the token's last use).
    Raises UnauthorizedError (401 with WWW-Authenticate: Bearer) without a valid token.
    """
    # Cached in the request's environ, not in `g`: `g` lives as long as the app context, which
    # several requests share when one is already pushed (tests, the CLI).
    cache = request.environ
    if "stopapp.actor" not in cache:
        cache["stopapp.actor"] = accounts.user_for_token(bearer_token())
    if cache["stopapp.actor"] is None:
        raise UnauthorizedError("Send a valid staff API token as Authorization: Bearer <token>.")
    return cache["stopapp.actor"]
