"""The pages' forms (Flask-WTF): every POST form carries a CSRF token; the queue's filter is a
GET form without one, so that a filtered view is a plain URL that can be bookmarked and shared."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    SearchField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from stopapp.constants import ReportState
from stopapp.errors import ProblemError
from stopapp.reports.taxonomy import BUILTIN_TYPES
from stopapp.review.queue import DEFAULT_STATES, SORTS, QueueQuery

# The words for each code of stopapp.review.services.DISMISS_REASON_CODES, on the report page,
# in bulk and in the history (a test keeps them in step with the codes).
DISMISS_REASON_LABELS = {
    "spam": "Spam, a test or a prank",
    "not_trafficking": "Not trafficking or exploitation",
    "insufficient": "Not enough information to act on",
    "out_of_scope": "Outside our area or remit",
    "other": "Another reason (explain below)",
}

SIX_DIGITS = Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message="Enter the 6 digits your app shows.")


class SignInForm(FlaskForm):
    email = EmailField("Email address", validators=[
        DataRequired("Enter your email address."), Length(max=254),
    ])
    password = PasswordField("Password", validators=[
        DataRequired("Enter your password."), Length(max=1000),
    ])
    code = StringField(
        "Code from your authenticator app",
        description="Only if you have set one up (every admin has). 6 digits.",
        validators=[Optional(), SIX_DIGITS],
    )


class EmptyForm(FlaskForm):
    """A form with only its CSRF token: sign out, revoke, start again."""


class TokenForm(FlaskForm):
    label = StringField(
        "Name of the new token",
        description="What will use it, so that you know which to revoke later.",
        validators=[DataRequired("Give the token a name."), Length(max=200)],
    )


class TotpConfirmForm(FlaskForm):
    code = StringField("Code from the app", validators=[
        DataRequired("Enter the 6 digits your app shows."), SIX_DIGITS,
    ])


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


STATE_LABELS = {
    "received": "Received", "new": "New", "in_review": "In review", "actioned": "Actioned",
    "closed": "Closed", "dismissed": "Dismissed", "duplicate": "Duplicate",
}
SORT_LABELS = {"priority": "Most urgent first", "oldest": "Oldest first", "newest": "Newest first"}
TYPE_LABELS = {code: labels["en"] for code, labels in BUILTIN_TYPES.items()}


def _choices(labels: dict[str, str]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


class QueueFilterForm(FlaskForm):
    """The queue's filters, read from the query string (GET: no CSRF token, nothing changes)."""

    class Meta:
        csrf = False

    state = MultiCheckboxField(
        "State", choices=_choices({s.value: STATE_LABELS[s.value] for s in ReportState}),
        default=list(DEFAULT_STATES),
    )
    type = SelectField("Type", choices=_choices({"": "Any type"} | TYPE_LABELS), default="")
    tag = StringField("Tag", description="dimension:code, e.g. sector:car_wash",
                      validators=[Optional(), Length(max=200)])
    assignee = SelectField("Assigned to", choices=_choices({
        "": "Anyone", "me": "Me", "none": "Nobody",
    }), default="")
    # Choices: the imported areas (set by the view). A code no longer imported is still
    # accepted, so that an old bookmark keeps working.
    area = SelectField("Area", choices=[], validate_choice=False, default="",
                       validators=[Optional(), Length(max=64)])
    created_from = DateField("Received from", validators=[Optional()])
    created_to = DateField("Received up to", validators=[Optional()])
    q = SearchField("Words in the report", validators=[Optional(), Length(max=500)])
    sort = SelectField("Order", choices=_choices(SORT_LABELS), default="priority")
    # west,south,east,north in degrees: set by the map's "only this area" button.
    bbox = HiddenField("Map area", validators=[Optional(), Length(max=200)])
    cursor = HiddenField(validators=[Optional(), Length(max=500)])

    def validate_bbox(self, field) -> None:
        if field.data and _bbox(field.data) is None:
            raise ValidationError("The map area is not valid: show everywhere and draw it again.")

    def query(self) -> QueueQuery:
        """The service's query for these (validated) filters."""
        to = self.created_to.data
        return QueueQuery(
            states=tuple(self.state.data or DEFAULT_STATES),
            type=self.type.data or None,
            tags=(self.tag.data.strip(),) if self.tag.data and self.tag.data.strip() else (),
            assignee=self.assignee.data or None,
            area=(self.area.data or "").strip() or None,
            created_from=_day_start(self.created_from.data),
            # "Up to" a day includes that whole day.
            created_to=_day_start(to) + timedelta(days=1) if to else None,
            q=(self.q.data or "").strip() or None,
            sort=self.sort.data if self.sort.data in SORTS else "priority",
            bbox=_bbox(self.bbox.data) if self.bbox.data else None,
            cursor=self.cursor.data or None,
            counts=True,
        )


def _bbox(text: str) -> tuple[float, float, float, float] | None:
    try:
        west, south, east, north = (float(part) for part in text.split(","))
    except ValueError:
        return None
    inside = -180 <= west < east <= 180 and -90 <= south < north <= 90
    return (west, south, east, north) if inside else None


def _day_start(day) -> datetime | None:
    return datetime.combine(day, time(), tzinfo=UTC) if day else None


def show_refusal(form: FlaskForm, error: ProblemError,
                 rename: dict[str, str] | None = None) -> None:
    """Put a service's refusal on the form: each field error on the field it names (`rename`
    maps the service's names to the form's where they differ), the rest as one message on top."""
    placed = False
    for name, messages in (error.errors or {}).items():
        field = form._fields.get((rename or {}).get(name, name))
        if field is not None and messages:
            field.errors = [*field.errors, *messages]
            placed = True
    if not placed:
        form.form_errors.append(error.detail)


def recipient_reasons(why: list[str]) -> list[str]:
    """Why an authority is suggested (stopapp.forwarding.services.recipients' `why`), in
    sentences: "Covers Hammersmith and Fulham.", "Handles labour exploitation."."""
    words = []
    for reason in why:
        kind, _, value = reason.partition(":")
        if kind == "area":
            code, _, name = value.partition(" ")
            words.append(f"Covers {name or code}.")
        elif kind == "type":
            words.append("Handles every type." if value == "all"
                         else f"Handles {TYPE_LABELS.get(value, value).lower()}.")
        else:
            words.append(f"{reason}.")
    return words
