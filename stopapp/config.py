"""Configuration, read from the environment once, when the app is created.

Local defaults work out of the box for development and tests. In production
(`STOPAPP_ENV=production`) the app refuses to start while any secret still has its
development default, so a forgotten variable can never ship a known key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

# Development-only values. They are public (they are in this repository), which is exactly
# why production refuses them.
DEV_SECRET_KEY = "dev-secret-key-not-for-production"
# A valid Fernet key (32 url-safe base64 bytes) that is obviously not secret.
DEV_DATA_ENCRYPTION_KEY = "ZGV2LWtleS1kby1ub3QtdXNlLWluLXByb2R1Y3Rpb24="
DEV_RECEIPT_KEY = "dev-receipt-key-not-for-production"
DEV_PHOTO_DIGEST_KEY = "dev-photo-digest-key-not-for-production"

MiB = 1024 * 1024


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def _env_value(name: str, type_name: str) -> object:
    raw = os.environ[name]
    if type_name == "int":
        return _env_int(name, 0)
    if type_name == "float":
        return float(raw) if raw else 0.0
    return raw


@dataclass
class Config:
    """Every setting the app reads. Field names are the environment variable names."""

    STOPAPP_ENV: str = "development"
    DATABASE_URL: str = "postgresql+psycopg://postgres@127.0.0.1:5432/stopapp"
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    # Connections each process keeps open to PostgreSQL for its sessions. Keep it at least the
    # web worker's thread count (WEB_THREADS): each request thread holds one, and a checkout
    # beyond the pool opens a connection that is closed again after that one use (a new server
    # process each time; with 8 threads and a pool of 5, intake, then on this pool, ran at a
    # third of its speed). Report intake's single statement has connections of its own, up to
    # one per request thread (stopapp/db.py _StatementConnections).
    DATABASE_POOL_SIZE: int = 10
    SECRET_KEY: str = DEV_SECRET_KEY
    # Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
    DATA_ENCRYPTION_KEY: str = DEV_DATA_ENCRYPTION_KEY
    # Derives receipts from idempotency keys so a retry can be answered with the same receipt
    # although only its hash is stored.
    RECEIPT_KEY: str = DEV_RECEIPT_KEY
    # Keys the digest that tells a photo's retry from another photo sent with the same
    # Idempotency-Key. A plain hash would let anyone holding the original prove it was sent.
    PHOTO_DIGEST_KEY: str = DEV_PHOTO_DIGEST_KEY
    MEDIA_ROOT: str = "var/media"
    SMTP_HOST: str = "127.0.0.1"
    SMTP_PORT: int = 8025
    SMTP_FROM: str = "STOP APP intelligence <noreply@stopapp.invalid>"
    # STARTTLS (1) and login (when a user name is set) for the outgoing mail server.
    SMTP_STARTTLS: int = 0
    # CA certificates (PEM file) for the mail server's certificate; empty: the system's.
    SMTP_CA_FILE: str = ""
    SMTP_USERNAME: str = ""
    SMTP_PASSWORD: str = ""
    SMTP_TIMEOUT_S: int = 30
    # The service's own GnuPG keyring (authorities' public keys only), private to it.
    GNUPG_HOME: str = "var/gnupg"
    # Delays between delivery attempts of a forward after a transient failure, in seconds;
    # after the last one the forward is `failed`.
    FORWARD_RETRY_INTERVALS_S: str = "60,300,1800,7200"
    # Rate limits, in flask-limiter notation; separate several with ";".
    RATELIMIT_REPORTS: str = "10/minute;100/hour"
    RATELIMIT_PHOTOS: str = "30/minute;300/hour"
    RATELIMIT_READS: str = "60/minute"
    # Failed receipt checks (404s) per client and per report: guessing is throttled.
    RATELIMIT_RECEIPT_FAILURES: str = "10/minute;50/day"
    RATELIMIT_ENABLED: int = 1
    # How many proxies in front of the app set X-Forwarded-For (0: trust none).
    TRUSTED_PROXIES: int = 0
    MAX_JSON_BYTES: int = 1 * MiB
    MAX_PHOTO_BYTES: int = 20 * MiB
    MAX_PHOTOS_PER_REPORT: int = 10
    MAX_PHOTO_PIXELS: int = 60_000_000
    # How long after an upload a retry of it is still recognised; past it the upload's digest
    # and idempotency key are erased, and a retry makes a new photo.
    PHOTO_RETRY_WINDOW_S: int = 24 * 3600
    # Pixels a web process decodes at once to check uploads (about 4 bytes each while held);
    # further uploads wait for their turn. One photo of the largest size at a time by default.
    UPLOAD_DECODE_PIXELS: int = 60_000_000
    # A report still `received` this long after it was stored is queued again by the reconciler.
    RECONCILE_AFTER_S: int = 60
    # argon2id cost for staff passwords (argon2-cffi's defaults, about 100 ms a hash here).
    # Tests lower these; production should keep them or raise them.
    PASSWORD_TIME_COST: int = 3
    PASSWORD_MEMORY_KIB: int = 65536
    # Possible duplicates (the triage job): other reports within this distance of the point and
    # this many days of the report, whose descriptions are at least this similar (pg_trgm
    # similarity, 0 to 1) or with a photo whose perceptual hash differs by at most this many of
    # its 64 bits.
    DUPLICATE_RADIUS_M: int = 250
    DUPLICATE_WINDOW_DAYS: int = 14
    DUPLICATE_TEXT_SIMILARITY: float = 0.3
    DUPLICATE_PHOTO_MAX_BITS: int = 10
    # The triage job waits at most this long for a lock (a long transaction, a migration), then
    # fails and is retried later, instead of holding a worker.
    TRIAGE_LOCK_TIMEOUT_MS: int = 5000
    # The web queue's map tiles: a Leaflet URL template such as
    # "https://{s}.tiles.example/{z}/{x}/{y}.png". Empty: the maps draw their
    # points and circles on a blank background and load nothing from outside.
    MAP_TILE_URL: str = ""
    # How long a staff sign-in lasts (a working day), in hours.
    STAFF_SESSION_HOURS: int = 10

    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, overrides: dict | None = None) -> Config:
        """Build the configuration from the environment, then apply `overrides` (tests)."""
        values: dict = {}
        for f in fields(cls):
            if f.name == "extra" or f.name not in os.environ:
                continue
            values[f.name] = _env_value(f.name, f.type)
        config = cls(**values)
        for key, value in (overrides or {}).items():
            if key in {f.name for f in fields(cls)}:
                setattr(config, key, value)
            else:
                config.extra[key] = value
        return config

    @property
    def forward_retry_intervals_s(self) -> tuple[int, ...]:
        return tuple(int(part) for part in str(self.FORWARD_RETRY_INTERVALS_S).split(",") if part)

    @property
    def is_production(self) -> bool:
        return self.STOPAPP_ENV == "production"

    def check(self) -> None:
        """Refuse to run in production with any development secret.

        Raises RuntimeError naming the variables that must be set.
        """
        if not self.is_production:
            return
        weak = [
            name
            for name, dev in (
                ("SECRET_KEY", DEV_SECRET_KEY),
                ("DATA_ENCRYPTION_KEY", DEV_DATA_ENCRYPTION_KEY),
                ("RECEIPT_KEY", DEV_RECEIPT_KEY),
                ("PHOTO_DIGEST_KEY", DEV_PHOTO_DIGEST_KEY),
            )
            if not getattr(self, name) or dev in getattr(self, name).split(",")
        ]
        if weak:
            raise RuntimeError(
                "Refusing to start in production with development secrets: set " + ", ".join(weak)
            )

    def flask_settings(self) -> dict:
        """The subset Flask and its extensions read from app.config."""
        return {
            "SECRET_KEY": self.SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": self.DATABASE_URL,
            # hide_parameters: a database error's message would otherwise carry the row's
            # values (report text, contact) into logs and tracebacks. No pre-ping on every
            # checkout: stopapp.db.ping_when_idle pings only connections that sat idle.
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False, "hide_parameters": True,
                                          "pool_size": int(self.DATABASE_POOL_SIZE)},
            "MAX_CONTENT_LENGTH": self.MAX_JSON_BYTES,
            "RATELIMIT_STORAGE_URI": self.REDIS_URL,
            "RATELIMIT_ENABLED": bool(int(self.RATELIMIT_ENABLED)),
            "RATELIMIT_HEADERS_ENABLED": True,
            # A Redis outage must not stop reports: the limiter then fails open, to memory.
            "RATELIMIT_SWALLOW_ERRORS": True,
            "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
            # The web queue's session cookie: never readable by scripts, never sent by other
            # sites' forms, and only over HTTPS outside development.
            "SESSION_COOKIE_NAME": "stopapp_session",
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.STOPAPP_ENV != "development",
            "PERMANENT_SESSION_LIFETIME": int(self.STAFF_SESSION_HOURS) * 3600,
            # CSRF is checked by the web queue's blueprint only (the API takes bearer tokens and
            # no cookies); a token lasts as long as the session, so a page left open over lunch
            # can still be submitted.
            "WTF_CSRF_CHECK_DEFAULT": False,
            "WTF_CSRF_TIME_LIMIT": None,
            # The pages send Referrer-Policy: no-referrer, so browsers send no Referer for
            # Flask-WTF's HTTPS same-origin check to read, and every form would be refused. The
            # token and the SameSite cookie do that job.
            "WTF_CSRF_SSL_STRICT": False,
            "RESTX_MASK_SWAGGER": False,
            "RESTX_ERROR_404_HELP": False,
            **self.extra,
        }
