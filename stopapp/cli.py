"""Command-line tasks: `flask --app wsgi <command>`. Each calls services, like the API does."""

from __future__ import annotations

import uuid

import click
from flask import Flask
from sqlalchemy import select

from stopapp.accounts.cli import users_cli
from stopapp.accounts.models import User
from stopapp.accounts.totp import rotate_totp_secret
from stopapp.db import unit_of_work
from stopapp.extensions import db, settings
from stopapp.reports import services as reports
from stopapp.reports.models import Report
from stopapp.security import ContactCipher

# Demo reports around the London boroughs in tests/data/geo (fictional text, real places).
DEMO_REPORTS = [
    {
        "description": "Men living in the back room of a car wash; they never leave and are "
        "driven away in a van at night.",
        "exploitation_types": ["labour"],
        "location": {"lat": 51.4927, "lon": -0.2240, "accuracy_m": 20, "source": "gps"},
        "place": "Car wash behind the station, King Street",
        "ongoing": True,
        "people": {"victims": 4, "minors": False, "suspects": 1},
        "vehicles": [{"description": "white van", "registration": "AB12 CDE"}],
        "language": "en",
    },
    {
        "description": "A teenage girl at the nail bar seems to work every day and sleeps there.",
        "exploitation_types": ["child", "labour"],
        "location": {"lat": 51.5010, "lon": -0.1925, "accuracy_m": 50, "source": "map"},
        "people": {"victims": 1, "minors": True},
        "language": "en",
    },
    {
        "description": "Una mujer trabaja como empleada doméstica sin sueldo y sin documentos.",
        "exploitation_types": ["domestic_servitude"],
        "location": {"lat": 51.5136, "lon": -0.1365, "accuracy_m": 100, "source": "text"},
        "place": "Soho",
        "language": "es",
    },
]


def register_cli(app: Flask) -> None:
    """Attach the project's commands to `app.cli`."""
    app.cli.add_command(users_cli)

    @app.cli.command("seed-demo")
    def seed_demo() -> None:
        """Store the demo reports (idempotent: run it as often as you like)."""
        for number, fields in enumerate(DEMO_REPORTS):
            key = uuid.uuid5(uuid.NAMESPACE_URL, f"stopapp-demo-report-{number}")
            with unit_of_work():
                submission = reports.submit_report(fields, key)
            state = "stored" if submission.created else "already there"
            click.echo(f"demo report {submission.reference} {state}: "
                       f"id {submission.report_id} receipt {submission.receipt}")

    @app.cli.command("rotate-contact-keys")
    def rotate_contact_keys() -> None:
        """Re-encrypt every stored contact and TOTP secret under the first DATA_ENCRYPTION_KEY."""
        cipher = ContactCipher(settings().DATA_ENCRYPTION_KEY)
        count = 0
        with unit_of_work():
            rows = db.session.scalars(
                select(Report).where(Report.contact_encrypted.is_not(None)).with_for_update()
            )
            for report in rows:
                report.contact_encrypted = cipher.rotate(report.contact_encrypted)
                count += 1
            # Staff TOTP secrets use the same keys: dropping the old key must not lock admins out.
            staff = db.session.scalars(
                select(User).where(User.totp_secret_encrypted.is_not(None)).with_for_update()
            )
            secrets = 0
            for user in staff:
                rotate_totp_secret(user)
                secrets += 1
        click.echo(f"re-encrypted {count} contact record(s) and {secrets} TOTP secret(s)")
