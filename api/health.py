"""Liveness and readiness, outside /api/v1 so load balancers need no version."""

from __future__ import annotations

from flask import Blueprint

from stopapp.health import readiness

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    """The process answers."""
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz():
    """200 when PostgreSQL and Redis both answer, else 503 with Retry-After."""
    checks = readiness()
    ok = all(checks.values())
    body = {"status": "ok" if ok else "unavailable",
            "checks": {name: "ok" if up else "down" for name, up in checks.items()}}
    if ok:
        return body, 200
    return body, 503, {"Retry-After": "10", "Cache-Control": "no-store"}
