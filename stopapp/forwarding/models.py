"""Authorities (who may receive intelligence) and forwards (one report sent to one authority)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stopapp.extensions import db
from stopapp.reports.models import utcnow


class ForwardStatus(enum.StrEnum):
    """Delivery states, exactly as the staff API shows them."""

    QUEUED = "queued"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


class Authority(db.Model):
    """A trusted recipient of intelligence: its addresses, areas, types and optional PGP key."""

    __tablename__ = "authorities"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    emails: Mapped[list[str]] = mapped_column(ARRAY(String(254)), nullable=False)
    # Codes of imported areas (not a foreign key: an array cannot hold one; checked on entry).
    area_codes: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False)
    # Exploitation type codes it handles; empty means all of them.
    exploitation_types: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), nullable=False, default=list, server_default="{}"
    )
    # ASCII-armoured public key, validated on entry, with what the validation found.
    pgp_public_key: Mapped[str | None] = mapped_column(Text)
    pgp_fingerprint: Mapped[str | None] = mapped_column(String(64))
    pgp_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    encrypted_only: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow,
        server_default=func.now(),
    )

    __table_args__ = (
        CheckConstraint("cardinality(emails) > 0", name="has_email"),
        CheckConstraint(
            "(pgp_public_key IS NULL) = (pgp_fingerprint IS NULL)", name="key_has_fingerprint"
        ),
    )

    def has_usable_key(self, now: datetime | None = None) -> bool:
        """Whether mail to it can be encrypted: a key that has not expired since it was entered."""
        if self.pgp_fingerprint is None:
            return False
        return self.pgp_expires_at is None or self.pgp_expires_at > (now or utcnow())

    def refuses_mail_now(self) -> bool:
        """Whether nothing may be sent to it: it accepts only encrypted mail and has no usable
        key (forwarding refuses it, and the message is never built in plaintext)."""
        return self.encrypted_only and not self.has_usable_key()


class Forward(db.Model):
    """One report sent (or to be sent) to one authority: the outbox row of its email.

    Written in the same transaction that marks the report `actioned`; the job
    `workers.jobs.send_forward` delivers it. `sending_since` is set (and committed) before the
    job talks SMTP and cleared when the outcome is recorded, so a job that finds it set knows
    the previous attempt died mid-way, possibly after the server had accepted the message.
    """

    __tablename__ = "forwards"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), nullable=False, index=True
    )
    authority_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("authorities.id"), nullable=False, index=True
    )
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # What the analyst chose for this message.
    include_contact: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    location_precision_m: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)

    status: Mapped[str] = mapped_column(
        String(12), nullable=False, default=ForwardStatus.QUEUED.value
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    sending_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    # The server's answer to the message (the DATA reply), as evidence of delivery.
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    # Fixed when the row is written, so a repeated send carries the same Message-ID.
    message_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    encrypted: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow,
        server_default=func.now(),
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    authority: Mapped[Authority] = relationship()

    __table_args__ = (
        CheckConstraint(
            "status IN ('queued','retrying','sent','failed')", name="known_status"
        ),
        CheckConstraint(
            "location_precision_m IS NULL OR location_precision_m IN (100, 1000)",
            name="known_precision",
        ),
        Index("ix_forwards_status_updated_at", "status", "updated_at"),
    )
