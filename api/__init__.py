"""The REST API under /api/v1: flask-restx namespaces with thin handlers."""

from __future__ import annotations

from flask import Blueprint, Flask

from api.problem import ProblemApi, install_error_handlers
from api.ratelimit import limiter


def init_api(app: Flask) -> None:
    """Mount the API, its OpenAPI document and Swagger UI, and the health checks on `app`."""
    from api import health, meta, reports, staff, triage_reports

    blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
    api = ProblemApi(
        blueprint,
        version="1",
        title="STOP APP public API",
        description="Reports of human trafficking from the STOP APP. See docs/api.md.",
        doc="/docs",
        validate=False,
    )
    api.add_namespace(reports.ns)
    api.add_namespace(meta.ns)
    api.add_namespace(staff.ns)
    api.add_namespace(triage_reports.ns)
    app.register_blueprint(blueprint)
    app.register_blueprint(health.blueprint)
    limiter.init_app(app)
    install_error_handlers(app)
