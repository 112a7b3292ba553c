"""The admin pages' forms (Flask-WTF, each POST form with its CSRF token). They check only the
shape of what was typed; the rules (roles, codes, the last admin...) are the services'."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from stopapp.accounts.models import Role
from stopapp.accounts.services import MIN_PASSWORD_CHARS
from stopapp.review.taxonomy import MAX_CODE_CHARS, MAX_LABEL_CHARS
from stopapp.review.taxonomy_data import DIMENSIONS

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLE_LABELS = {
    Role.ANALYST.value: "Analyst: works the queue",
    Role.SUPERVISOR.value: "Supervisor: also assigns, reopens, reads contact details and the "
                           "audit trail",
    Role.ADMIN.value: "Admin: also manages accounts, areas, authorities and the taxonomy",
}


def _role_choices() -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in ROLE_LABELS.items()]


class NewUserForm(FlaskForm):
    email = EmailField("Email address", validators=[
        DataRequired("Enter their email address."), Length(max=254),
    ])
    name = StringField("Full name", description="As colleagues will see it on reports.",
                       validators=[DataRequired("Enter their name."), Length(max=200)])
    role = SelectField("Role", choices=_role_choices(), default=Role.ANALYST.value)
    password = PasswordField(
        "Initial password",
        description=f"At least {MIN_PASSWORD_CHARS} characters. Tell it to them in person or by "
                    "phone, never in an email with their address.",
        validators=[
            DataRequired("Enter an initial password."),
            Length(min=MIN_PASSWORD_CHARS,
                   message=f"The password needs at least {MIN_PASSWORD_CHARS} characters."),
            Length(max=1000),
        ],
    )


class RoleForm(FlaskForm):
    role = SelectField("New role", choices=_role_choices())


class TagCodeForm(FlaskForm):
    dimension = SelectField("Dimension", choices=[
        SelectChoice(name, label) for name, (_, label) in DIMENSIONS.items()
    ])
    code = StringField(
        "Code",
        description="Lower-case letters, digits and single underscores, with '.' before a "
                    "subtype, e.g. car_wash or labour.agriculture. It cannot be changed later.",
        validators=[DataRequired("Enter the code."), Length(max=MAX_CODE_CHARS)],
    )
    label = StringField("Label", description="What analysts read.",
                        validators=[DataRequired("Enter the label."),
                                    Length(max=MAX_LABEL_CHARS)])


class RelabelForm(FlaskForm):
    label = StringField("New label", validators=[
        DataRequired("Enter the label."), Length(max=MAX_LABEL_CHARS),
    ])


class AreasUploadForm(FlaskForm):
    file = FileField("GeoJSON file", description="A FeatureCollection of Polygons and "
                     "MultiPolygons (RFC 7946, or with a legacy crs naming an EPSG code).",
                     validators=[FileRequired("Choose a GeoJSON file.")])
    code_property = StringField(
        "Property holding the area code", description="e.g. LAD13CD",
        validators=[DataRequired("Name the property that holds each area's code."),
                    Length(max=200)],
    )
    name_property = StringField(
        "Property holding the area name", description="e.g. LAD13NM",
        validators=[DataRequired("Name the property that holds each area's name."),
                    Length(max=200)],
    )
    repair = BooleanField("Repair invalid polygons (ST_MakeValid) instead of refusing the file")


class AuditFilterForm(FlaskForm):
    """The audit trail's filters, read from the query string (GET: nothing changes)."""

    class Meta:
        csrf = False

    report = StringField("Report id or reference", description="e.g. R-2026-000123",
                         validators=[Optional(), Length(max=100)])
    actor_email = EmailField("Who (email)", validators=[Optional(), Length(max=254)])
    action = StringField("Action", description="e.g. report.read, user.role, taxonomy.change",
                         validators=[Optional(), Length(max=100)])
    created_from = DateField("From", validators=[Optional()])
    created_to = DateField("Up to", validators=[Optional()])
    cursor = HiddenField(validators=[Optional(), Length(max=200)])

    def filters(self) -> dict:
        """The service's keyword arguments for these (validated) filters."""
        to = self.created_to.data
        return {
            "report": self.report.data or None,
            "actor_email": self.actor_email.data or None,
            "action": self.action.data or None,
            "from_at": _day_start(self.created_from.data),
            # "Up to" a day includes that whole day.
            "to_at": _day_start(to) + timedelta(days=1) if to else None,
            "cursor": self.cursor.data or None,
        }


def _day_start(day) -> datetime | None:
    return datetime.combine(day, time(), tzinfo=UTC) if day else None


class AuthorityForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter the authority's name."),
                                           Length(max=200)])
    emails = TextAreaField(
        "Email addresses", description="One a line. Every address gets each forwarded report.",
        validators=[DataRequired("Enter at least one email address."), Length(max=5000)],
    )
    area_codes = StringField(
        "Area codes", description="Separated by spaces or commas: the areas it covers.",
        validators=[Optional(), Length(max=5000)],
    )
    exploitation_types = StringField(
        "Exploitation types", description="Codes separated by spaces or commas; empty: all types.",
        validators=[Optional(), Length(max=2000)],
    )
    pgp_public_key = TextAreaField(
        "PGP public key", description="ASCII-armoured. Empty: mail is sent unencrypted.",
        validators=[Optional(), Length(max=100_000)],
    )
    encrypted_only = BooleanField("Send only encrypted mail (refuse to forward without a key)")
    active = BooleanField("Active (suggested as a recipient)", default=True)

    def validate_emails(self, field) -> None:
        bad = [word for word in _words(field.data) if not EMAIL.match(word)]
        if bad:
            raise ValidationError(f"Not an email address: {', '.join(bad)}.")

    def fields(self) -> dict:
        """The service's authority fields."""
        return {
            "name": self.name.data.strip(),
            "emails": _words(self.emails.data),
            "area_codes": _words(self.area_codes.data),
            "exploitation_types": _words(self.exploitation_types.data),
            "pgp_public_key": (self.pgp_public_key.data or "").strip() or None,
            "encrypted_only": bool(self.encrypted_only.data),
            "active": bool(self.active.data),
        }


def _words(text: str | None) -> list[str]:
    return [word for word in (text or "").replace(",", " ").split() if word]
