"""Rate limits on the public endpoints (flask-limiter, counted in Redis).

The bucket key is a keyed, truncated hash of the client address, not the address itself:
enough to count requests, useless for finding a reporter in Redis.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request
from flask_limiter import Limiter


def client_key() -> str:
    """A keyed hash of the client address, for rate-limit buckets."""
    address = (request.remote_addr or "unknown").encode()
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, address, hashlib.sha256).hexdigest()[:24]


def report_key() -> str:
    """One bucket per report id, so guessing a receipt is throttled from any number of clients."""
    return "report:" + str((request.view_args or {}).get("report_id", ""))


def setting(name: str):
    """A limit read from the configuration when the request comes, not at import."""
    return lambda: getattr(current_app.extensions["stopapp.config"], name)


def failed_lookup(response) -> bool:
    """Only failed receipt checks count against the guessing limits."""
    return response.status_code == 404


limiter = Limiter(key_func=client_key, default_limits=[])
