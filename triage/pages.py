"""The queue, a report, photos, help, and the packaged map library (the admin pages are in
admin.py)."""

from __future__ import annotations

import uuid

import xstatic.pkg.leaflet
import xstatic.pkg.leaflet_markercluster
from flask import (
    abort,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    send_from_directory,
    url_for,
)
from flask_login import current_user, login_required
from wtforms import SelectChoice

from stopapp.accounts.services import list_users
from stopapp.areas import services as areas
from stopapp.db import unit_of_work
from stopapp.extensions import settings
from stopapp.review import queue, services
from stopapp.review.taxonomy import list_taxonomy
from triage import blueprint
from triage.bulk_forms import BulkForm
from triage.bulk_results import RESULTS_PARAM, kept_results, query_without_results
from triage.forms import STATE_LABELS, QueueFilterForm, _bbox
from triage.report_actions import report_page
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
    """The queue: most urgent first, filtered by the query string (a shareable URL), with the
    results of the bulk action that led here (triage/bulk.py)."""
    token = request.args.get(RESULTS_PARAM)
    if not token:
        return queue_page()
    results = kept_results(current_user.get_id(), token)
    return queue_page(results=results, results_gone=results is None)


def queue_page(*, bulk_form: BulkForm | None = None, results: dict | None = None,
               results_gone: bool = False, status: int = 200):
    """The queue for the filters in the query string, with its bulk form: drawn by GET /reports
    and again by the bulk action (triage/bulk.py), with its errors or its results."""
    form = QueueFilterForm(request.args)
    bulk_form = bulk_form or BulkForm(formdata=None)
    page = None
    with unit_of_work():
        actor = current_actor()
        form.area.choices = _area_choices(areas.list_areas(actor), form.area.data)
        if form.validate():
            page = queue.list_reports(actor, form.query())
        elif status == 200:
            status = 422
        # Only supervisors are offered "assign" (the service refuses anyone else all the same).
        can_assign = services.is_supervisor(actor)
        bulk_form.offer(list_taxonomy(actor), list_users(actor)[0] if can_assign else [])
    # This page's query without a bulk action's results (where the bulk form comes back to),
    # and without the cursor as well: the base of the "next page" and "first page" links.
    this_page = query_without_results()
    args = {key: values for key, values in this_page.items() if key != "cursor"}
    without_bbox = {key: value for key, value in args.items() if key != "bbox"}
    return render_template("triage/queue.html", form=form, page=page, args=args,
                           this_page=this_page, without_bbox=without_bbox,
                           state_labels=STATE_LABELS, paged=bool(form.cursor.data),
                           tile_url=settings().MAP_TILE_URL, bulk_form=bulk_form,
                           can_assign=can_assign, results=results,
                           results_gone=results_gone, filtered=_filtered()), status


def _filtered() -> bool:
    """Whether the query string sets a filter (the filters panel is then shown open)."""
    return any(key not in ("view", RESULTS_PARAM) for key in request.args)


def _area_choices(areas: list, current: str | None) -> list[SelectChoice]:
    choices = [SelectChoice("", "Any area")]
    choices += [SelectChoice(area.code, f"{area.name} ({area.code})") for area in areas]
    if current and current not in {area.code for area in areas}:
        choices.append(SelectChoice(current, current))
    return choices


@blueprint.route("/areas.geojson")
@login_required
def area_outlines():
    """The imported areas' outlines for the maps (GeoJSON, simplified): those meeting `bbox`
    (west,south,east,north), or those whose code is given as `code` (repeated)."""
    bbox_text = request.args.get("bbox")
    bbox = _bbox(bbox_text) if bbox_text else None
    if bbox_text and bbox is None:
        abort(400)
    codes = request.args.getlist("code") or None
    with unit_of_work():
        outlines = areas.area_outlines(current_actor(), bbox=bbox, codes=codes)
    response = jsonify(outlines)
    response.mimetype = "application/geo+json"
    return response


@blueprint.route("/reports/<uuid:report_id>")
@login_required
def report(report_id: uuid.UUID):
    """Everything staff may see of one report (the read is audited by the service), with the
    forms of every action on it (triage/report_actions.py)."""
    return report_page(report_id)


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
