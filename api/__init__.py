"""The REST API under /api/v1: flask-restx namespaces with thin handlers."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, url_for

from api.openapi import DocumentedApi, swagger_ui
from api.problem import install_error_handlers
from api.ratelimit import limiter, skip_limiter_hooks_for_single_trip


def init_api(app: Flask) -> None:
    """Mount the API, its OpenAPI 3.1 document and Swagger UI, and the health checks on `app`."""
    from api import accounts, areas, forwarding, health, meta, reports, staff, triage_reports

    blueprint = Blueprint("api", __name__, url_prefix="/api/v1", template_folder="templates")
    api = DocumentedApi(
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
    api.add_namespace(accounts.ns)
    api.add_namespace(areas.ns)
    api.add_namespace(forwarding.ns)
    api.add_namespace(triage_reports.ns)
    api.documentation(lambda: swagger_ui(api, url_for("api.openapi")))
    # The same document as swagger.json, under the name OpenAPI 3 tools expect.
    blueprint.add_url_rule("/openapi.json", "openapi", lambda: jsonify(api.__schema__))
    app.register_blueprint(blueprint)
    # The submission endpoint, the hottest, is served without flask-restx's dispatch layers
    # (documented and routed as before).
    reports.install_submit_view(app)
    app.register_blueprint(health.blueprint)
    limiter.init_app(app)
    skip_limiter_hooks_for_single_trip(app)
    install_error_handlers(app)
