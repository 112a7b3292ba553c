"""Who is calling the staff API: `Authorization: Bearer <token>`, nothing else (no cookies, so
no CSRF here). Role checks are not made here but in the services, which take the actor."""

from __future__ import annotations

from flask import g, request

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
    token = bearer_token()
    # Keyed by the token: `g` belongs to the app context, which can outlive one request (an
    # app context pushed around several requests, as in tests and scripts).
    cached = g.get("stopapp_actor")
    if cached is None or cached[0] != token:
        cached = g.stopapp_actor = (token, accounts.user_for_token(token))
    if cached[1] is None:
        raise UnauthorizedError("Send a valid staff API token as Authorization: Bearer <token>.")
    return cached[1]
