"""Who is signed in to the pages, and the headers that keep the pages safe in a browser.

Sessions (Flask-Login, a signed cookie) carry only the user's id; each request loads the user
again, so a deactivated account is signed out at its next click. The services still check the
role on every call: the pages never decide who may act.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from flask import Flask, Response, redirect, request, url_for
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect

from stopapp.accounts.models import User
from stopapp.errors import UnauthorizedError
from stopapp.extensions import db, settings

PREFIX = "/triage"
login_manager = LoginManager()
csrf = CSRFProtect()


class SignedIn(UserMixin):
    """The session's view of a staff user (Flask-Login's interface around the model)."""

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        return str(self.user.id)

    @property
    def is_active(self) -> bool:
        return self.user.active


@login_manager.user_loader
def _load(user_id: str) -> SignedIn | None:
    try:
        user = db.session.get(User, uuid.UUID(user_id))
    except ValueError:
        return None
    return SignedIn(user) if user is not None and user.active else None


@login_manager.unauthorized_handler
def _to_sign_in() -> Response:
    return redirect(url_for("triage.sign_in", next=request.full_path.rstrip("?")))


def current_actor() -> User:
    """The signed-in user, for the services. Raises UnauthorizedError when nobody is."""
    if not current_user.is_authenticated:
        raise UnauthorizedError("Sign in first.")
    return current_user.user


def safe_next(target: str | None) -> str:
    """`target` if it is a page of the web queue on this site, else the queue.

    Only a path under /triage/ is followed: no scheme, no host, no `//` or backslash tricks
    that browsers read as another site.
    """
    default = url_for("triage.queue")
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX + "/"):
        return default
    return target


def content_security_policy() -> str:
    """No inline scripts or styles; map tiles from the configured host only."""
    img = ["'self'", "data:", "blob:"]
    tiles = settings().MAP_TILE_URL
    if tiles:
        parts = urlsplit(tiles)
        # Leaflet's {s} picks a subdomain per tile.
        img.append(f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}")
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src " + " ".join(img),
        "object-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ])


def _security_headers(response: Response) -> Response:
    # Harmless for the API too (JSON is never sniffed or framed), so set everywhere.
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
        # Not on the API: Swagger UI needs inline scripts. Every page of the web queue,
        # including its 404s, gets the policy.
        response.headers["Content-Security-Policy"] = content_security_policy()
        response.headers["X-Frame-Options"] = "DENY"
        if request.endpoint not in ("triage.static", "triage.vendor"):
            # Staff pages hold report text: no browser or proxy may keep a copy.
            response.headers["Cache-Control"] = "no-store"
    return response


def init_security(app: Flask, pages: str) -> None:
    """Sign-in, CSRF and the security headers, on `app`; call before the pages' blueprint
    (named `pages`) is registered."""
    with _hooks_on_pages_only(app, pages):
        login_manager.init_app(app)
        csrf.init_app(app)
    # "strong": a session cookie replayed from another address or browser is dropped.
    login_manager.session_protection = "strong"
    app.after_request(_security_headers)


@contextmanager
def _hooks_on_pages_only(app: Flask, pages: str) -> Iterator[None]:
    """The request hooks that extensions register app-wide inside this block run for the
    blueprint named `pages` only, ahead of its own hooks (as they did when app-wide).

    Flask-Login's remember-cookie refresh acts only on a session that signed in or out, and
    Flask-WTF's default check is off (WTF_CSRF_CHECK_DEFAULT; the pages call csrf.protect
    themselves): on the API, which has no session, both only cost time, and every app-wide hook
    is called on each request (about 0.8% of a report submission's CPU each).
    """
    registries = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    earlier = [list(registry.get(None, ())) for registry in registries]
    yield
    for registry, kept in zip(registries, earlier, strict=True):
        added = [hook for hook in registry.get(None, ()) if hook not in kept]
        if added:
            registry[None] = kept
            registry.setdefault(pages, [])[:0] = added
