"""Bulk actions from the queue: dismiss, tag, mark as duplicate or assign the ticked reports.

After the action the browser is sent back to the queue (same filters: they ride in the form's
action URL), which shows the result of each report: done, or why the service refused it
(triage/bulk_results.py keeps them for that page). Input that is missing or malformed, and a
refusal of the whole request (assign by an analyst, an unknown duplicate reference), change
nothing and come back as errors on the form with the ticks kept.
"""

from __future__ import annotations

from flask import redirect, url_for
from flask_login import current_user, login_required

from stopapp.accounts.services import list_users
from stopapp.db import unit_of_work
from stopapp.errors import ForbiddenError, ProblemError, ValidationError
from stopapp.review import queue, services
from triage import blueprint
from triage.bulk_forms import ACTION_LABELS, BulkForm
from triage.bulk_results import RESULTS_PARAM, keep_results, query_without_results
from triage.forms import DISMISS_REASON_LABELS, STATE_LABELS, show_refusal
from triage.pages import queue_page
from triage.security import current_actor

# A field of the service's errors -> the form's field that shows it.
# The service names the tags `tags`; the form types them in `other_tags`.
_RENAMED = {"tags": "other_tags"}


@blueprint.route("/reports/bulk", methods=["POST"])
@login_required
def bulk():
    form = BulkForm()
    if not form.validate():
        return queue_page(bulk_form=form, status=422)
    action, fields = form.service_action()
    try:
        with unit_of_work():
            actor = current_actor()
            if form.action.data == "duplicate":
                fields["duplicate_of"] = services.find_report_id(actor, form.duplicate_of.data)
            results = services.bulk_change(actor, form.ids.data, action, fields)
            references = queue.report_references(actor, form.ids.data)
            title = _action_name(form, actor)
    except ValidationError as error:
        show_refusal(form, error, _RENAMED)
        return queue_page(bulk_form=form, status=422)
    except ForbiddenError as error:
        form.form_errors.append(f"{error.detail} Nothing was changed.")
        return queue_page(bulk_form=form, status=403)
    rows = [{"id": str(r.id), "reference": references.get(r.id, str(r.id)),
             "done": r.problem is None, "why": _why(r.problem)} for r in results]
    done = sum(row["done"] for row in rows)
    summary = {"action": title, "rows": rows, "done": done, "refused": len(rows) - done}
    token = keep_results(current_user.get_id(), summary)
    if token is None:  # Redis unreachable: shown now, and a reload would post the form again
        return queue_page(results=summary)
    return redirect(url_for("triage.queue", **query_without_results(), **{RESULTS_PARAM: token}),
                    303)


def _action_name(form: BulkForm, actor) -> str:
    if form.action.data == "duplicate":
        return f"Mark as duplicate of {form.duplicate_of.data.strip().upper()}"
    if form.action.data == "tag":
        return "Add " + ", ".join(form.tags())
    if form.action.data == "assign":
        names = {str(user.id): user.name for user in list_users(actor)[0]}
        return "Assign to " + names.get(form.user_id.data, "the chosen person")
    if form.action.data == "dismiss":
        reason = DISMISS_REASON_LABELS[form.reason_code.data].split(" (")[0]
        return f"Dismiss ({reason})"
    return ACTION_LABELS[form.action.data]


def _why(problem: ProblemError | None) -> str:
    """Why the service refused one report, in plain words."""
    if problem is None:
        return "Done"
    allowed = problem.extensions.get("allowed")
    state = problem.extensions.get("state")
    if allowed is not None and state in STATE_LABELS:
        if not allowed:
            return f"Not allowed: a report still {STATE_LABELS[state].lower()} is moved " \
                   "only by the automatic triage."
        targets = " or ".join(STATE_LABELS.get(s, s).lower() for s in allowed)
        return f"Not allowed: a report that is {STATE_LABELS[state].lower()} can only move " \
               f"to {targets}."
    if problem.errors:
        details = "; ".join(m for messages in problem.errors.values() for m in messages)
        return f"{problem.detail} {details}"
    return problem.detail
