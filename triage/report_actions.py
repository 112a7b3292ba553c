"""The report page and everything an analyst does on it: claim, release, assign, state moves,
tags, priority override, notes, replies, forwarding to authorities and the supervisor's
contact view.

Each action is a POST form (CSRF) that calls one service in one unit of work, then redirects
back to the report with a message (POST-redirect-GET). When the service refuses, the page is
rendered again with the analyst's input kept and the service's reason as the form's error.

Two analysts on one report: every change carries the version the analyst saw. When someone
else changed the report first, the service raises PreconditionFailedError and nothing is saved;
the page is rendered again with status 409 Conflict (the form POST sent no If-Match header, so
412 would misdescribe it), a message naming who changed what since the analyst opened the page
(the history events after the last one the form had seen), and the analyst's input in the form
with the current version, so that they can look and save again.
"""

from __future__ import annotations

import uuid

from flask import flash, redirect, render_template, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import SelectChoice

from stopapp.accounts.services import list_users
from stopapp.constants import ReportState
from stopapp.db import unit_of_work
from stopapp.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    PreconditionRequiredError,
    ValidationError,
)
from stopapp.extensions import settings
from stopapp.forwarding import services as forwarding
from stopapp.review import queue, services
from stopapp.review.taxonomy import list_taxonomy
from triage import blueprint
from triage.forms import DISMISS_REASON_LABELS, STATE_LABELS, recipient_reasons, show_refusal
from triage.report_forms import (
    PRECISION_LABELS,
    AssignForm,
    ChangeForm,
    ClaimForm,
    ContactForm,
    DismissForm,
    DuplicateForm,
    ForwardForm,
    MoveForm,
    NoteForm,
    PriorityForm,
    ReleaseForm,
    ReplyForm,
    TagsForm,
)
from triage.security import current_actor

S = ReportState
# The forms on the page, by the prefix of their fields. The moves without reasons add one
# MoveForm each, prefixed move-<state>.
FORMS: dict[str, type[FlaskForm]] = {
    "claim": ClaimForm, "release": ReleaseForm, "assign": AssignForm, "dismiss": DismissForm,
    "duplicate": DuplicateForm, "tags": TagsForm, "priority": PriorityForm, "note": NoteForm,
    "reply": ReplyForm, "contact": ContactForm, "forward": ForwardForm,
}
# How each move reads on its button, by target (and for in_review, whether it is a reopen).
MOVE_LABELS = {
    S.IN_REVIEW.value: "Move to in review",
    S.NEW.value: "Put back as new (ends the claim)",
    S.ACTIONED.value: "Mark as actioned",
    S.CLOSED.value: "Close",
}
REOPEN_LABEL = "Reopen (back to in review)"
# Moves with fields of their own have their own forms.
MOVES_WITH_FORMS = (S.DISMISSED.value, S.DUPLICATE.value)


def _and(words: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def describe(event: dict, names: dict[str, str],
             authorities: dict[str, str] | None = None) -> str:
    """A history event in plain words ("moved it from new to dismissed (spam)"); `names` are
    the staff's and `authorities` the authorities' names, by id."""
    action, detail = event["action"], event.get("detail") or {}

    def state(value: str | None) -> str:
        return STATE_LABELS.get(value or "", value or "?").lower()

    def person(user_id: str | None) -> str:
        return names.get(user_id or "", "someone") if user_id else "nobody"

    if action == "report.claim":
        return "claimed it"
    if action == "report.release":
        return "released the claim"
    if action == "report.assign":
        return f"assigned it to {person(detail.get('to'))}"
    if action == "report.transition":
        words = f"moved it from {state(detail.get('from'))} to {state(detail.get('to'))}"
        if detail.get("reason_code"):
            words += f" ({DISMISS_REASON_LABELS.get(detail['reason_code'], detail['reason_code'])})"
        if detail.get("reason"):
            words += f": \u201c{detail['reason']}\u201d"
        return words
    if action == "report.tags":
        parts = []
        if detail.get("added"):
            parts.append("added " + ", ".join(detail["added"]))
        if detail.get("removed"):
            parts.append("removed " + ", ".join(detail["removed"]))
        return "changed the tags: " + "; ".join(parts or ["no change"])
    if action == "report.priority_override":
        to = detail.get("to")
        return "cleared the priority override" if to is None else f"set the priority to {to}"
    if action == "report.note":
        return "wrote a private note"
    if action == "report.reply":
        return "replied to the reporter"
    if action == "report.forward":
        to = _and([(authorities or {}).get(i, "an authority")
                   for i in detail.get("authority_ids") or []]) or "an authority"
        if detail.get("resend"):
            return f"sent the forward to {to} again"
        words = f"forwarded it to {to}"
        if detail.get("include_contact"):
            words += ", with the reporter's contact details"
        if detail.get("location_precision_m"):
            precision = PRECISION_LABELS.get(str(detail["location_precision_m"]), "coarse")
            words += f", with the location to {precision.lower()}"
        return words
    if action == "contact.read":
        return "looked at the contact details"
    if action == "triage.enriched":
        return "set its areas, priority and possible duplicates (automatic triage)"
    return action


def _new_form(name: str, report: dict, seen: int, prefix: str | None = None) -> FlaskForm:
    cls = MoveForm if prefix and prefix.startswith("move-") else FORMS[name]
    form = cls(formdata=None, prefix=prefix or name)
    if isinstance(form, ChangeForm):
        form.refresh(report["version"], seen)
    if isinstance(form, TagsForm):
        form.show(report["tags"])
    if isinstance(form, PriorityForm):
        form.priority_override.data = report["priority_override"]
    return form


def report_page(report_id: uuid.UUID, status: int = 200, *, submitted: FlaskForm | None = None,
                conflict: bool = False, contact: dict | None = None):
    """The report with every form; `submitted` (with the analyst's input and its errors) takes
    the place of its blank twin. With `conflict`, the page says who changed what since."""
    with unit_of_work():
        actor = current_actor()
        report = queue.report_detail(actor, report_id)
        taxonomy = list_taxonomy(actor)
        users, _ = list_users(actor)
        history = report["history"]
        seen = history[-1]["id"] if history else 0
        supervisor = services.is_supervisor(actor)
        names = {str(user.id): user.name for user in users}
        authorities = {}
        if any(event["action"] == "report.forward" for event in history):
            authorities = {str(a.id): a.name for a in forwarding.list_authorities(actor)}
        for event in history:
            event["words"] = describe(event, names, authorities)

        allowed = sorted(services.TRANSITIONS[S(report["state"])])
        reopen = report["state"] in services.REOPENED_FROM
        # From new, "claim" is the move to in review (the caller becomes the assignee either
        # way), and from a claimed in_review, "release" is the move back to new: one button
        # for each, not two.
        moves = [state for state in allowed if state not in MOVES_WITH_FORMS
                 and not (report["state"] == S.NEW and state == S.IN_REVIEW)
                 and not (state == S.NEW and report["assignee"])]
        forms = {name: _new_form(name, report, seen) for name in FORMS}
        for state in moves:
            forms[f"move-{state}"] = _new_form("move", report, seen, prefix=f"move-{state}")
        changes = []
        if submitted is not None:
            if conflict and isinstance(submitted, ChangeForm):
                since = submitted.seen_event()
                changes = [event for event in history if event["id"] > since]
                submitted.refresh(report["version"], seen)
            forms[submitted._prefix.rstrip("-")] = submitted
        forms["assign"].user_id.choices = [
            SelectChoice(str(user.id), f"{user.name} ({user.role})")
            for user in users if user.active
        ]
        tags_form = forms["tags"]
        chosen = set(tags_form.tags.data or [])
        # Retired codes are offered only where the report (or the analyst's input) has them.
        dimensions = [
            (dimension, [code for code in dimension.codes
                         if code.retired_at is None or code.tag in chosen
                         or code.tag in report["tags"]])
            for dimension in taxonomy
        ]
        labels = {code.tag: code.label for dimension in taxonomy for code in dimension.codes}
        assignee = report["assignee"]["id"] if report["assignee"] else None
        can_forward = forwarding.may_forward(actor, report["state"], assignee)
        recipients = None
        if can_forward or isinstance(submitted, ForwardForm):
            recipients = _recipients(actor, report_id)
        page = render_template(
            "triage/report.html", report=report, state_labels=STATE_LABELS,
            tile_url=settings().MAP_TILE_URL, forms=forms, submitted=submitted,
            conflict=conflict, changes=changes, moves=moves, reopen=reopen,
            move_labels=MOVE_LABELS, reopen_label=REOPEN_LABEL, supervisor=supervisor,
            actor=actor, dimensions=dimensions, chosen=chosen, labels=labels,
            can_dismiss=S.DISMISSED.value in allowed and (supervisor or not reopen),
            can_duplicate=S.DUPLICATE.value in allowed and (supervisor or not reopen),
            contact=contact, can_forward=can_forward, recipients=recipients,
            forward_chosen=set(forms["forward"].authority_ids.data or []),
        )
    return page, status


def _recipients(actor, report_id: uuid.UUID) -> dict[str, list[dict]]:
    """The forwarding form's authorities, suggested first, as the template shows them."""
    return {
        group: [{
            "id": str(r.authority.id), "name": r.authority.name,
            "why": recipient_reasons(r.why), "encrypted": r.authority.has_usable_key(),
            # The service refuses these: the form shows them, but cannot tick them.
            "refused": r.authority.refuses_mail_now(),
        } for r in rows]
        for group, rows in forwarding.recipients(actor, report_id).items()
    }


def _act(report_id: uuid.UUID, form: FlaskForm, call, done: str, anchor: str):
    """Validate `form`, run `call(actor, form)` in one unit of work, then redirect with `done`;
    or render the page again with the analyst's input and the reason it was not saved."""
    if not form.validate():
        return report_page(report_id, 422, submitted=form)
    try:
        with unit_of_work():
            call(current_actor(), form)
    except PreconditionFailedError:
        return report_page(report_id, 409, submitted=form, conflict=True)
    except ValidationError as error:
        show_refusal(form, error)
        return report_page(report_id, 422, submitted=form)
    except (ConflictError, ForbiddenError, PreconditionRequiredError) as error:
        form.form_errors.append(error.detail)
        return report_page(report_id, error.status, submitted=form)
    flash(done)
    return redirect(url_for("triage.report", report_id=report_id, _anchor=anchor))


@blueprint.route("/reports/<uuid:report_id>/claim", methods=["POST"])
@login_required
def claim(report_id: uuid.UUID):
    return _act(report_id, ClaimForm(prefix="claim"),
                lambda actor, form: services.claim_report(actor, report_id, form.if_match()),
                "You have claimed this report.", "actions")


@blueprint.route("/reports/<uuid:report_id>/release", methods=["POST"])
@login_required
def release(report_id: uuid.UUID):
    return _act(report_id, ReleaseForm(prefix="release"),
                lambda actor, form: services.release_report(actor, report_id, form.if_match()),
                "The claim is released: the report is back in the queue for anyone.", "actions")


@blueprint.route("/reports/<uuid:report_id>/assign", methods=["POST"])
@login_required
def assign(report_id: uuid.UUID):
    def call(actor, form):
        try:
            user_id = uuid.UUID(form.user_id.data)
        except ValueError as exc:
            raise ValidationError("Choose someone from the list.",
                                  errors={"user_id": ["Choose someone from the list."]}) from exc
        services.assign_report(actor, report_id, form.if_match(), user_id)

    return _act(report_id, AssignForm(prefix="assign"), call, "The report is assigned.",
                "actions")


@blueprint.route("/reports/<uuid:report_id>/move/<state>", methods=["POST"])
@login_required
def move(report_id: uuid.UUID, state: str):
    if state not in MOVE_LABELS:
        raise NotFoundError("No such move.")

    def call(actor, form):
        reason = (form.reason.data or "").strip() or None
        services.transition_report(actor, report_id, form.if_match(),
                                   {"to": state, "reason": reason})

    return _act(report_id, MoveForm(prefix=f"move-{state}"), call,
                f"The report is now {STATE_LABELS[state].lower()}.", "actions")


@blueprint.route("/reports/<uuid:report_id>/dismiss", methods=["POST"])
@login_required
def dismiss(report_id: uuid.UUID):
    def call(actor, form):
        services.transition_report(actor, report_id, form.if_match(), {
            "to": S.DISMISSED.value, "reason_code": form.reason_code.data,
            "reason": (form.reason.data or "").strip() or None,
        })

    return _act(report_id, DismissForm(prefix="dismiss"), call, "The report is dismissed.",
                "actions")


@blueprint.route("/reports/<uuid:report_id>/duplicate", methods=["POST"])
@login_required
def duplicate(report_id: uuid.UUID):
    def call(actor, form):
        other = services.find_report_id(actor, form.duplicate_of.data)
        services.transition_report(actor, report_id, form.if_match(), {
            "to": S.DUPLICATE.value, "duplicate_of": other,
            "reason": (form.reason.data or "").strip() or None,
        })

    return _act(report_id, DuplicateForm(prefix="duplicate"), call,
                "The report is marked as a duplicate.", "actions")


@blueprint.route("/reports/<uuid:report_id>/tags", methods=["POST"])
@login_required
def tags(report_id: uuid.UUID):
    return _act(report_id, TagsForm(prefix="tags"),
                lambda actor, form: services.update_report(
                    actor, report_id, form.if_match(), {"tags": form.tag_set()}),
                "The tags are saved.", "tags-title")


@blueprint.route("/reports/<uuid:report_id>/priority", methods=["POST"])
@login_required
def priority(report_id: uuid.UUID):
    return _act(report_id, PriorityForm(prefix="priority"),
                lambda actor, form: services.update_report(
                    actor, report_id, form.if_match(),
                    {"priority_override": form.priority_override.data}),
                "The priority is saved.", "actions")


@blueprint.route("/reports/<uuid:report_id>/notes", methods=["POST"])
@login_required
def note(report_id: uuid.UUID):
    return _act(report_id, NoteForm(prefix="note"),
                lambda actor, form: services.add_note(actor, report_id, form.body.data.strip()),
                "Your note is saved.", "notes-title")


@blueprint.route("/reports/<uuid:report_id>/replies", methods=["POST"])
@login_required
def reply(report_id: uuid.UUID):
    return _act(report_id, ReplyForm(prefix="reply"),
                lambda actor, form: services.add_reply(actor, report_id, form.body.data.strip()),
                "Your reply is sent: the reporter sees it the next time they check.",
                "conversation-title")


@blueprint.route("/reports/<uuid:report_id>/forwards", methods=["POST"])
@login_required
def forward(report_id: uuid.UUID):
    return _act(report_id, ForwardForm(prefix="forward"),
                lambda actor, form: forwarding.forward_report(
                    actor, report_id, form.if_match(), **form.choices()),
                "The report is forwarded: each authority's email is queued for sending.", "forward")


@blueprint.route("/reports/<uuid:report_id>/contact", methods=["POST"])
@login_required
def contact(report_id: uuid.UUID):
    """The decrypted contact details, in this response only: never in a URL, a flash message
    (the session cookie) or any cache (staff pages are no-store)."""
    form = ContactForm(prefix="contact")
    if not form.validate():
        return report_page(report_id, 422, submitted=form)
    try:
        with unit_of_work():
            details = services.reveal_contact(current_actor(), report_id, form.reason.data)
    except ValidationError as error:
        show_refusal(form, error)
        return report_page(report_id, 422, submitted=form)
    except (ForbiddenError, NotFoundError) as error:
        form.form_errors.append(error.detail)
        return report_page(report_id, error.status, submitted=form)
    return report_page(report_id, 200, contact=details)
