"""Audit events. The table is append-only in the database itself (a trigger refuses UPDATE,
DELETE and TRUNCATE), not only in the code.

`actor_id` and `report_id` carry no foreign keys on purpose: the trail must outlive the rows it
names (a deactivated user, a report removed by retention) and must never be cascaded away.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stopapp.extensions import db
from stopapp.reports.models import utcnow


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    # None for the system (the triage job, the CLI without a user).
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # Dotted verb, e.g. report.read, report.transition, photo.read, contact.read, user.create.
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    report_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # What changed (from/to, tags added...), never report text or contact details.
    detail: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)

    __table_args__ = (
        Index("ix_audit_events_report_id_id", "report_id", "id"),
        Index("ix_audit_events_actor_id_id", "actor_id", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
        # The trail's from/to filter: without it a window months back scans every newer event.
        Index("ix_audit_events_at", "at"),
    )
