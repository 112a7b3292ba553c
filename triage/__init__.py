"""The analysts' web queue: a Flask blueprint of server-rendered pages.

Every page works with JavaScript off; the scripts in static/ (the CSP allows no other) add the
map and the keyboard shortcuts. Views are thin: read a form, call one service in a unit of work,
render. A service's error becomes a message on the page, never a decision of the view's own.
"""

from __future__ import annotations

from datetime import UTC

from flask import Blueprint, Flask, render_template, request
from flask_wtf.csrf import CSRFError

from stopapp.errors import ProblemError
from stopapp.reports.models import utcnow
from stopapp.review.enrichment import reason_label
from triage.security import csrf, init_security, login_manager

blueprint = Blueprint(
    "triage", __name__, url_prefix="/triage", template_folder="templates", static_folder="static"
)


# Pages whose forms may be larger than the app's MAX_CONTENT_LENGTH: endpoint -> bytes.
LARGER_FORM_BYTES: dict[str, int] = {}


@blueprint.before_request
def _check_csrf() -> None:
    # Only the pages take cookies, so only they need CSRF (WTF_CSRF_CHECK_DEFAULT is off for
    # the API, which takes bearer tokens).
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        # Before the check, which reads (and so size-checks) the form.
        max_bytes = LARGER_FORM_BYTES.get(request.endpoint or "")
        if max_bytes and request.method == "POST":
            request.max_content_length = max_bytes
        csrf.protect()


@blueprint.errorhandler(CSRFError)
def _csrf_refused(error: CSRFError):
    return render_template("triage/error.html", title="This form has expired",
                           message="The page was open too long or came from elsewhere. Go back, "
                                   "reload the page and try again."), 400


@blueprint.errorhandler(ProblemError)
def _service_refused(error: ProblemError):
    if error.status == 401:
        return login_manager.unauthorized()
    return render_template("triage/error.html", title=error.title, message=error.detail), \
        error.status


@blueprint.app_template_filter("when")
def _when(value) -> str:
    """A timestamp as staff read it: UTC, to the minute."""
    return value.astimezone(UTC).strftime("%d %b %Y %H:%M UTC") if value else ""


@blueprint.app_template_filter("age")
def _age(value) -> str:
    """How long ago, in the largest whole unit: "3 h", "2 d"."""
    seconds = max(0, int((utcnow() - value).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return "just now"


@blueprint.app_template_filter("priority_class")
def _priority_class(value: int) -> str:
    return "high" if value >= 70 else "medium" if value >= 40 else "low"


@blueprint.app_template_filter("priority_reason")
def _priority_reason(code: str) -> str:
    """A priority reason code in plain words (stopapp.review.enrichment.REASON_LABELS)."""
    return reason_label(code)


def init_triage(app: Flask) -> None:
    """Mount the web queue on `app`."""
    from triage import (  # noqa: F401 - routes register on import
        account,
        admin,
        bulk,
        pages,
        report_actions,
        signin,
    )

    init_security(app, blueprint.name)
    app.register_blueprint(blueprint)
