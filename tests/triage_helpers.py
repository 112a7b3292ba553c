"""Building blocks for the analysts' API tests: staff with tokens, reports in any state, tags."""

from __future__ import annotations

import os
import uuid
from datetime import datetime

from geoalchemy2.elements import WKTElement
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from stopapp.accounts import services as accounts
from stopapp.audit.models import AuditEvent
from stopapp.constants import SRID
from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.forwarding.models import Authority
from stopapp.reports.models import Report, report_reference_seq
from stopapp.review.models import TagCode

# Codes that exist in the taxonomy; inserted here so that the tests pass whether or not the
# taxonomy's seeding migration is present.
TEST_TAGS = {
    ("sector", "car_wash"): "Car wash",
    ("sector", "nail_bar_beauty"): "Nail bar or beauty",
    ("control", "documents_withheld"): "Documents withheld",
    ("control", "debt_bondage"): "Debt bondage",
}


def seed_tags() -> None:
    db.session.execute(
        insert(TagCode)
        .values([{"dimension": d, "code": c, "label": label, "crosswalk": {}, "position": 0}
                 for (d, c), label in TEST_TAGS.items()])
        .on_conflict_do_nothing()
    )


def make_staff(app, role: str = "analyst", name: str | None = None) -> tuple[uuid.UUID, str]:
    """A new active user with `role` and an API token: (id, token)."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    with app.app_context(), unit_of_work():
        user = accounts.create_user(email, role, "correct horse battery", name=name or role)
        _, token = accounts.issue_token(user, "test")
        return user.id, token


def auth(token: str, version: int | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    return headers


def new_report(
    *,
    state: str = "new",
    priority: int | None = 50,
    description: str = "Men sleep in the back of the car wash and leave in a van at night.",
    lon: float | None = -0.2240,
    lat: float | None = 51.4927,
    created_at: datetime | None = None,
    **fields,
) -> Report:
    """A report stored straight into the database (in the caller's session), already triaged."""
    number = db.session.scalar(select(report_reference_seq.next_value()))
    report = Report(
        reference=f"R-T-{number:06d}",
        idempotency_key_hash=os.urandom(32),
        request_hash=os.urandom(32),
        receipt_hash=os.urandom(32),
        description=description,
        exploitation_types=fields.pop("exploitation_types", ["labour"]),
        location=WKTElement(f"POINT({lon} {lat})", srid=SRID) if lon is not None else None,
        place=fields.pop("place", "King Street"),
        state=state,
        priority=priority,
        **fields,
    )
    if created_at is not None:
        report.created_at = created_at
    db.session.add(report)
    db.session.flush()
    return report


def events(report_id: uuid.UUID, action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.report_id == report_id).order_by(AuditEvent.id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query))


def pretend_key(authority_id: str) -> None:
    """Give an authority what a usable PGP key leaves on its row, in the caller's session: for
    pages that only show whether mail is encrypted (the PGP tests use real keys)."""
    db.session.execute(update(Authority).where(Authority.id == uuid.UUID(authority_id))
                       .values(pgp_public_key="(test)", pgp_fingerprint="0" * 40))
