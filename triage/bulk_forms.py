"""The queue's bulk form: the reports ticked in the table and one action for all of them.

One POST form (with its CSRF token) wraps the action panel and the table, so it works without
JavaScript. The form checks only what is missing or malformed; who may do what, and whether
each report can take the action, is the service's decision (stopapp.review.services.bulk_change).
"""

from __future__ import annotations

import re
import uuid

from flask_wtf import FlaskForm
from wtforms import Field, RadioField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional

from stopapp.review.services import FREE_PREFIX, MAX_BULK_IDS
from triage.forms import DISMISS_REASON_LABELS

ACTION_LABELS = {
    "dismiss": "Dismiss",
    "tag": "Add tags",
    "duplicate": "Mark as duplicate of another report",
    "assign": "Assign to someone",
}
# A coded tag as the service takes it; anything else typed is the analyst's own words.
_CODED = re.compile(r"[a-z_]+:[a-z0-9_.]+")


class ReportIdsField(Field):
    """The ticked rows: every `ids` value in the form, as report ids."""

    def process_formdata(self, valuelist: list[str]) -> None:
        self.data = []
        try:
            self.data = list(dict.fromkeys(uuid.UUID(value) for value in valuelist))
        except ValueError as exc:
            raise ValueError("The selection is not valid: reload the page and try again.") \
                from exc

    def _value(self) -> str:  # pragma: no cover - never rendered as one input
        return ""


class BulkForm(FlaskForm):
    ids = ReportIdsField("Reports")
    action = RadioField(
        "What to do with the selected reports",
        choices=[SelectChoice(value, label) for value, label in ACTION_LABELS.items()],
        validators=[InputRequired("Choose what to do with the selected reports.")],
    )
    reason_code = SelectField(
        "Why they are dismissed",
        choices=[SelectChoice("", "Choose a reason")]
        + [SelectChoice(code, label) for code, label in DISMISS_REASON_LABELS.items()],
        default="",
    )
    reason = StringField("Explain the dismissal",
                         description="Needed with another reason. Staff see it in the history.",
                         validators=[Optional(), Length(max=500)])
    # Choices come from the taxonomy when the page is drawn; the service checks the codes.
    tag_code = SelectField("Tag from the list", choices=[], validate_choice=False, default="")
    other_tags = StringField(
        "Other tags",
        description="Codes such as sector:car_wash, or your own words (kept as free tags). "
                    "Separate several with commas.",
        validators=[Optional(), Length(max=1000)],
    )
    duplicate_of = StringField("Reference of the report they repeat",
                               description="For example R-2026-000123.",
                               validators=[Optional(), Length(max=40)])
    # Choices (active staff) come from the directory when the page is drawn.
    user_id = SelectField("Assign to", choices=[], validate_choice=False, default="")

    def offer(self, dimensions, users) -> None:
        """The choices of the moment: live taxonomy codes grouped by dimension (from
        list_taxonomy), and the active staff to assign to (from list_users)."""
        self.tag_code.choices = [SelectChoice("", "None")] + [
            SelectChoice(f"{dimension.name}:{code.code}", code.label, optgroup=dimension.label)
            for dimension in dimensions for code in dimension.codes if code.retired_at is None
        ]
        self.user_id.choices = [SelectChoice("", "Choose a person")] + [
            SelectChoice(str(user.id), f"{user.name} ({user.role})")
            for user in users if user.active
        ]

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if not self.ids.errors:
            if not self.ids.data:
                self.ids.errors.append("Select at least one report in the table.")
            elif len(self.ids.data) > MAX_BULK_IDS:
                self.ids.errors.append(f"Select at most {MAX_BULK_IDS} reports at once.")
        action = self.action.data
        if action == "dismiss":
            if not self.reason_code.data:
                self.reason_code.errors.append("Choose why the reports are dismissed.")
            elif self.reason_code.data not in DISMISS_REASON_LABELS:
                self.reason_code.errors.append("Choose one of the reasons in the list.")
            elif self.reason_code.data == "other" and not (self.reason.data or "").strip():
                self.reason.errors.append("Explain why the reports are dismissed.")
        elif action == "tag" and not self.tags():
            self.other_tags.errors.append("Choose a tag from the list or type one.")
        elif action == "duplicate" and not (self.duplicate_of.data or "").strip():
            self.duplicate_of.errors.append("Type the reference of the report they repeat.")
        elif action == "assign":
            try:
                uuid.UUID(self.user_id.data or "")
            except ValueError:
                self.user_id.errors.append("Choose who to assign the reports to.")
        return ok and not any(field.errors for field in self)

    def tags(self) -> list[str]:
        """The tags to add: the one chosen from the list, then each typed one."""
        tags = [self.tag_code.data] if self.tag_code.data else []
        for part in (self.other_tags.data or "").split(","):
            part = part.strip()
            if part:
                tags.append(part if part.startswith(FREE_PREFIX) or _CODED.fullmatch(part)
                            else FREE_PREFIX + part)
        return list(dict.fromkeys(tags))

    def service_action(self) -> tuple[str, dict]:
        """(action, fields) for bulk_change, but for a duplicate's target, which the view
        resolves from its reference."""
        action = self.action.data
        if action == "dismiss":
            reason = (self.reason.data or "").strip() or None
            return "transition", {"to": "dismissed", "reason_code": self.reason_code.data,
                                  "reason": reason}
        if action == "tag":
            return "add_tags", {"tags": self.tags()}
        if action == "duplicate":
            return "transition", {"to": "duplicate"}
        return "assign", {"user_id": uuid.UUID(self.user_id.data)}
