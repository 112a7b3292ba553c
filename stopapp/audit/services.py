"""Writing the audit trail. Every staff read and change of a report goes through `record`."""

from __future__ import annotations

import uuid

from stopapp.accounts.models import User
from stopapp.audit.models import AuditEvent
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
