"""The analysts' web queue (a Flask blueprint). Its pages arrive with analyst accounts."""

from __future__ import annotations

from flask import Blueprint, Flask

blueprint = Blueprint(
    "triage", __name__, url_prefix="/triage", template_folder="templates", static_folder="static"
)


def init_triage(app: Flask) -> None:
    """Mount the web queue on `app`."""
    app.register_blueprint(blueprint)
