"""Liveness and readiness, outside /api/v1 so load balancers need no version."""

from __future__ import annotations

from flask import Blueprint

from api.parsing import NO_STORE
from api.problem import problem_response
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
    states = {name: "ok" if up else "down" for name, up in checks.items()}
    if all(checks.values()):
        return {"status": "ok", "checks": states}, 200, NO_STORE
    down = ", ".join(name for name, up in checks.items() if not up)
    return problem_response(
        503, "Service Unavailable", f"Not answering: {down}.",
        headers={"Retry-After": "10", "Cache-Control": "no-store"},
        extensions={"checks": states},
    )
