"""The forms of the report page: one per action, each with its CSRF token and a prefix so that
several can share one page without their fields' ids clashing.

Every form that changes the report itself carries the version the analyst saw (it becomes the
service's If-Match) and `seen`, the last history event the page showed, so that a refusal for a
stale version can say what happened since. Notes and replies add rows and need neither.
"""

from __future__ import annotations

import re
import uuid

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from stopapp.forwarding.services import (
    LOCATION_PRECISIONS_M,
    MAX_FORWARD_AUTHORITIES,
    MAX_FORWARD_NOTE_CHARS,
)
from stopapp.review.services import (
    FREE_PREFIX,
    MAX_CONTACT_REASON_CHARS,
    MAX_NOTE_CHARS,
    MAX_REASON_CHARS,
    MAX_REPLY_CHARS,
)
from triage.forms import DISMISS_REASON_LABELS


class ChangeForm(FlaskForm):
    """A change to the report: the version it was made against, and the history seen."""

    version = HiddenField(validators=[InputRequired("Reload the page and try again.")])
    seen = HiddenField()

    def if_match(self) -> list[int] | None:
        """The version as the service's If-Match (None when it is not a number)."""
        text = (self.version.data or "").strip()
        return [int(text)] if text.isdigit() else None

    def seen_event(self) -> int:
        text = (self.seen.data or "").strip()
        return int(text) if text.isdigit() else 0

    def refresh(self, version: int, seen: int) -> None:
        """Point the form at the report as it is now, keeping what the analyst typed."""
        for field, value in ((self.version, str(version)), (self.seen, str(seen))):
            field.data = value
            field.raw_data = [value]


class ClaimForm(ChangeForm):
    pass


class ReleaseForm(ChangeForm):
    pass


class AssignForm(ChangeForm):
    user_id = SelectField("Assign to", validators=[DataRequired("Choose who to assign it to.")],
                          validate_choice=False)


class MoveForm(ChangeForm):
    """A move that needs no reason (the target is in the URL): to in review, back to new,
    actioned, closed, reopened."""

    reason = TextAreaField("Why (optional)", validators=[Optional(), Length(max=MAX_REASON_CHARS)])


class DismissForm(ChangeForm):
    reason_code = RadioField(
        "Why dismiss it?",
        choices=[SelectChoice(code, label) for code, label in DISMISS_REASON_LABELS.items()],
        validators=[InputRequired("Choose why the report is dismissed.")],
    )
    reason = TextAreaField(
        "Explain the reason", description="Needed when you choose another reason.",
        validators=[Length(max=MAX_REASON_CHARS)],
    )

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.reason_code.data == "other" and not (self.reason.data or "").strip():
            self.reason.errors = [*self.reason.errors, "Explain why you dismiss it."]
            valid = False
        return valid


class DuplicateForm(ChangeForm):
    duplicate_of = StringField(
        "Reference of the report it repeats", description="For example R-2026-000123.",
        validators=[DataRequired("Enter the reference of the report it repeats."),
                    Length(max=100)],
    )
    reason = TextAreaField("Why (optional)", validators=[Optional(), Length(max=MAX_REASON_CHARS)])


class TagsForm(ChangeForm):
    # The choices are the taxonomy's codes; the service judges them (unknown, retired...).
    tags = SelectMultipleField("Tags", validate_choice=False)
    free_tags = TextAreaField(
        "Free tags",
        description="Words of your own, one per line or separated by commas.",
        validators=[Length(max=5000)],
    )

    def tag_set(self) -> list[str]:
        """The whole set to save: the ticked codes, then the free tags."""
        free = []
        for part in re.split(r"[,\n]", self.free_tags.data or ""):
            part = part.strip()
            text = part[len(FREE_PREFIX):].strip() if part.startswith(FREE_PREFIX) else part
            if text:
                free.append(FREE_PREFIX + text)
        return list(dict.fromkeys([*(self.tags.data or []), *free]))

    def show(self, tags: list[str]) -> None:
        """Fill the form from a report's tags."""
        self.tags.data = [t for t in tags if not t.startswith(FREE_PREFIX)]
        self.free_tags.data = "\n".join(t[len(FREE_PREFIX):] for t in tags
                                        if t.startswith(FREE_PREFIX))


class PriorityForm(ChangeForm):
    priority_override = IntegerField(
        "Priority set by a supervisor",
        description="0 to 100. Leave it empty to go back to the computed priority.",
        validators=[Optional(), NumberRange(0, 100, "Enter a number from 0 to 100.")],
    )


class NoteForm(FlaskForm):
    body = TextAreaField(
        "New private note", description="Only staff see notes.",
        validators=[DataRequired("Write the note first."),
                    Length(max=MAX_NOTE_CHARS,
                           message=f"A note is at most {MAX_NOTE_CHARS} characters.")],
    )


class ReplyForm(FlaskForm):
    body = TextAreaField(
        "Reply to the reporter",
        description="The reporter sees this in their app, from \"an analyst\", without your name.",
        validators=[DataRequired("Write the reply first."),
                    Length(max=MAX_REPLY_CHARS,
                           message=f"A reply is at most {MAX_REPLY_CHARS} characters.")],
    )


class ContactForm(FlaskForm):
    reason = TextAreaField(
        "Why do you need the contact details?",
        description="Recorded in the audit trail with your name.",
        validators=[DataRequired("Say why you need the contact details."),
                    Length(max=MAX_CONTACT_REASON_CHARS,
                           message=f"At most {MAX_CONTACT_REASON_CHARS} characters.")],
    )


def _about(metres: int) -> str:
    return f"About {metres // 1000} km" if metres >= 1000 else f"About {metres} m"


# The choices of precision: "" is exact, the others the service's values in metres.
PRECISION_LABELS = {"": "Exact"} | {str(m): _about(m) for m in LOCATION_PRECISIONS_M}


class ForwardForm(ChangeForm):
    """Forward the report to authorities. The choices (active authorities) are the page's; the
    service judges the ids (unknown, inactive, encrypted only without a key)."""

    authority_ids = SelectMultipleField(
        "Authorities", validate_choice=False,
        validators=[DataRequired("Choose at least one authority to forward it to.")],
    )
    include_contact = BooleanField(
        "Include the reporter's contact details",
        description="The reporter agreed to be contacted. Leave it unticked unless the "
                    "authority needs to reach them.",
    )
    location_precision_m = RadioField(
        "How exact a location to send",
        description="A coarser point protects the reporter: the email's text, map link and "
                    "GeoJSON all use it, and the place they typed is left out.",
        choices=[SelectChoice(value, label) for value, label in PRECISION_LABELS.items()],
        default="",
    )
    note = TextAreaField(
        "Cover note (optional)",
        description="Goes at the top of the email to every authority you choose.",
        validators=[Optional(), Length(max=MAX_FORWARD_NOTE_CHARS, message=(
            f"A cover note is at most {MAX_FORWARD_NOTE_CHARS} characters."))],
    )

    def validate_authority_ids(self, field) -> None:
        if len(field.data) > MAX_FORWARD_AUTHORITIES:
            raise ValidationError(f"Choose at most {MAX_FORWARD_AUTHORITIES} authorities.")
        try:
            [uuid.UUID(value) for value in field.data]
        except ValueError as exc:
            raise ValidationError("Choose authorities from the list.") from exc

    def choices(self) -> dict:
        """The service's keyword arguments for what was chosen (after validate)."""
        precision = self.location_precision_m.data
        return {
            "authority_ids": [uuid.UUID(value) for value in self.authority_ids.data],
            "include_contact": bool(self.include_contact.data),
            "location_precision_m": int(precision) if precision else None,
            "note": (self.note.data or "").strip() or None,
        }
