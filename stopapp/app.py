"""The composition root: builds the Flask app and mounts the API and the web queue on it.

This is the one module of the core that imports `api/` and `triage/` (see STYLE.md).
"""

from __future__ import annotations

import logging

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from redis import Redis
from werkzeug.middleware.proxy_fix import ProxyFix

from stopapp.config import Config
from stopapp.db import ping_when_idle
from stopapp.extensions import db, migrate


def create_app(test_config: dict | None = None) -> Flask:
    """Create the app from the environment; `test_config` overrides settings in tests.

    Raises RuntimeError in production when a secret still has its development default.
    """
    config = Config.from_env(test_config)
    config.check()

    app = Flask(__name__)
    app.session_interface = _SessionInterface()
    app.config.update(config.flask_settings())
    app.extensions["stopapp.config"] = config
    app.extensions["stopapp.redis"] = Redis.from_url(
        config.REDIS_URL, socket_connect_timeout=2, socket_timeout=5
    )
    if config.TRUSTED_PROXIES:
        n = int(config.TRUSTED_PROXIES)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    import stopapp.models  # noqa: F401 - register every model before migrations look

    db.init_app(app)
    with app.app_context():
        ping_when_idle(db.engine)
    migrate.init_app(app, db, directory=_migrations_dir())

    from api import init_api
    from triage import init_triage

    init_api(app)
    init_triage(app)

    from stopapp.cli import register_cli

    register_cli(app)
    _quiet_loggers()
    return app


# Where the API is mounted (api/__init__.py); its requests have no session (see below).
API_PATH_PREFIX = "/api/"


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per key set
    instead of on every request, and none at all for the API."""

    def __init__(self) -> None:
        self._serializers: dict = {}

    def get_signing_serializer(self, app: Flask):  # noqa: ANN201 - as the base class
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = self._serializers[keys] = super().get_signing_serializer(app)
        return serializer

    def open_session(self, app: Flask, request):  # noqa: ANN001, ANN201 - as the base class
        # Only the web queue's pages take cookies: the API authenticates by bearer token and
        # never reads or writes the session. Its requests (the public intake above all) get
        # Flask's empty, read-only null session, which is never saved, so no cookie is parsed,
        # checked or set for them, and Flask-Login finds no user in it (as before: none was
        # ever there for a client of the API).
        if request.path.startswith(API_PATH_PREFIX):
            return self.make_null_session(app)
        return super().open_session(app, request)


def _migrations_dir() -> str:
    import os

    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


def _quiet_loggers() -> None:
    # Werkzeug's request log line carries the client address and the path (report ids); the
    # reporter's safety wins over convenience.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Pillow logs every EXIF tag it parses at DEBUG: device make, model, GPS rationals.
    logging.getLogger("PIL").setLevel(logging.INFO)
    # python-gnupg logs gpg's output (ciphertext, key listings with addresses) at DEBUG.
    logging.getLogger("gnupg").setLevel(logging.WARNING)
