"""Writing the audit trail. Every staff read and change of a report goes through `record`."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from stopapp.accounts.models import Role, User
from stopapp.accounts.permissions import require_role
from stopapp.audit.models import AuditEvent
from stopapp.errors import ValidationError
from stopapp.extensions import db


def record(
    actor: User | None,
    action: str,
    *,
    report_id: uuid.UUID | None = None,
    detail: dict | None = None,
) -> AuditEvent:
    """Append one event in the caller's unit of work (it commits or rolls back with the change).

    `detail` says what changed (states, tags, reasons...), never report text or contact details.
    """
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        action=action,
        report_id=report_id,
        detail=detail or {},
    )
    db.session.add(event)
    return event


AUDIT_PAGE_MAX = 100


def encode_cursor(event_id: int) -> str:
    """An opaque cursor for the page after `event_id` (newest first)."""
    return base64.urlsafe_b64encode(f"audit:{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The event id a cursor points after. Raises ValidationError for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "audit" or not number.isdigit():
            raise ValueError(cursor)
        return int(number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(
            "Not a cursor from this list.", errors={"cursor": ["Unknown cursor."]}
        ) from exc


@dataclass
class AuditEntry:
    id: int
    at: datetime
    # {"id", "email"}, or None for the system; email is None for a user no longer stored.
    actor: dict | None
    action: str
    report_id: uuid.UUID | None
    detail: dict


@dataclass
class AuditPage:
    items: list[AuditEntry]
    next_cursor: str | None


def list_events(
    actor: User,
    *,
    report_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    action: str | None = None,
    from_at: datetime | None = None,
    to_at: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> AuditPage:
    """Audit events matching every filter given, newest first, one page (supervisor).

    `from_at` is inclusive, `to_at` exclusive. Paging is keyset on the event id (one SQL
    statement a page, the actor's email joined in): events written while someone pages are
    neither skipped nor shown twice. Raises UnauthorizedError, ForbiddenError and
    ValidationError (a bad cursor or limit).
    """
    require_role(actor, Role.SUPERVISOR)
    if not 1 <= limit <= AUDIT_PAGE_MAX:
        raise ValidationError("Bad limit.", errors={"limit": [f"1 to {AUDIT_PAGE_MAX}."]})
    # Plain columns, not ORM objects: a page is read, never changed, and building 50 tracked
    # instances cost more than the query itself.
    query = (
        select(AuditEvent.id, AuditEvent.at, AuditEvent.actor_id, User.email, AuditEvent.action,
               AuditEvent.report_id, AuditEvent.detail)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .order_by(AuditEvent.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        query = query.where(AuditEvent.id < decode_cursor(cursor))
    if report_id is not None:
        query = query.where(AuditEvent.report_id == report_id)
    if actor_id is not None:
        query = query.where(AuditEvent.actor_id == actor_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if from_at is not None:
        query = query.where(AuditEvent.at >= from_at)
    if to_at is not None:
        query = query.where(AuditEvent.at < to_at)
    items = [
        AuditEntry(
            id=row.id,
            at=row.at,
            actor={"id": row.actor_id, "email": row.email} if row.actor_id else None,
            action=row.action,
            report_id=row.report_id,
            detail=row.detail,
        )
        for row in db.session.execute(query)
    ]
    next_cursor = encode_cursor(items[limit - 1].id) if len(items) > limit else None
    return AuditPage(items=items[:limit], next_cursor=next_cursor)


def search_events(
    actor: User,
    *,
    report: str | None = None,
    actor_email: str | None = None,
    action: str | None = None,
    from_at: datetime | None = None,
    to_at: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> AuditPage:
    """`list_events` with the filters people type: `report` is a report's id or its reference
    (R-2026-000123), `actor_email` a member of staff's email (supervisor).

    Raises what `list_events` raises, and ValidationError naming `report` or `actor_email` when
    no report or user matches.
    """
    from stopapp.reports.models import Report  # reports' models are not needed by `record`

    require_role(actor, Role.SUPERVISOR)
    report_id = actor_id = None
    if report and report.strip():
        text = report.strip()
        try:
            report_id = uuid.UUID(text)
        except ValueError:
            report_id = db.session.scalar(
                select(Report.id).where(Report.reference == text.upper())
            )
            if report_id is None:
                raise ValidationError("No report has this reference.", errors={
                    "report": ["No report has this id or reference."]
                }) from None
    if actor_email and actor_email.strip():
        actor_id = db.session.scalar(
            select(User.id).where(User.email == actor_email.strip().lower())
        )
        if actor_id is None:
            raise ValidationError("No member of staff has this email.", errors={
                "actor_email": ["No member of staff has this email."]
            })
    return list_events(actor, report_id=report_id, actor_id=actor_id,
                       action=(action or "").strip() or None, from_at=from_at, to_at=to_at,
                       cursor=cursor, limit=limit)
