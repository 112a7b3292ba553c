"""The queue, a report (read-only for now), photos, help, and the packaged map library (the
admin pages are in admin.py)."""

from __future__ import annotations

import uuid

import xstatic.pkg.leaflet
import xstatic.pkg.leaflet_markercluster
from flask import abort, redirect, render_template, request, send_file, send_from_directory, url_for
from flask_login import login_required

from stopapp.db import unit_of_work
from stopapp.extensions import settings
from stopapp.review import queue, services
from triage import blueprint
from triage.forms import STATE_LABELS, QueueFilterForm
from triage.security import current_actor

# Served by the app from the installed packages (pinned in pyproject.toml), never from a CDN.
VENDOR = {
    "leaflet": xstatic.pkg.leaflet.BASE_DIR,
    "markercluster": xstatic.pkg.leaflet_markercluster.BASE_DIR,
}


@blueprint.route("/vendor/<package>/<path:filename>")
def vendor(package: str, filename: str):
    if package not in VENDOR:
        abort(404)
    return send_from_directory(VENDOR[package], filename, max_age=86400)


@blueprint.route("/")
def home():
    return redirect(url_for("triage.queue"))


@blueprint.route("/reports", endpoint="queue")
@login_required
def show_queue():
    """The queue: most urgent first, filtered by the query string (a shareable URL)."""
    form = QueueFilterForm(request.args)
    page, status = None, 200
    if form.validate():
        with unit_of_work():
            page = queue.list_reports(current_actor(), form.query())
    else:
        status = 422
    # The filters without the cursor: the base of the "next page" and "first page" links.
    args = {key: request.args.getlist(key) for key in request.args if key != "cursor"}
    without_bbox = {key: value for key, value in args.items() if key != "bbox"}
    return render_template("triage/queue.html", form=form, page=page, args=args,
                           without_bbox=without_bbox,
                           state_labels=STATE_LABELS, paged=bool(form.cursor.data),
                           tile_url=settings().MAP_TILE_URL), status


@blueprint.route("/reports/<uuid:report_id>")
@login_required
def report(report_id: uuid.UUID):
    """Everything staff may see of one report (the read is audited by the service)."""
    with unit_of_work():
        detail = queue.report_detail(current_actor(), report_id)
    return render_template("triage/report.html", report=detail, state_labels=STATE_LABELS,
                           tile_url=settings().MAP_TILE_URL)


@blueprint.route("/photos/<uuid:photo_id>/<any(thumb, display):variant>")
@login_required
def photo(photo_id: uuid.UUID, variant: str):
    """A clean copy of a photo, to signed-in staff only, never cached (the read is audited)."""
    with unit_of_work():
        stream = services.open_photo(current_actor(), photo_id, variant)
    response = send_file(stream, mimetype="image/jpeg", max_age=0, conditional=False)
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.route("/help")
@login_required
def help_page():
    return render_template("triage/help.html")
