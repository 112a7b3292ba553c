"""Reports, their messages, and the exploitation-type taxonomy."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from geoalchemy2 import Geography
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Sequence,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stopapp.constants import SRID, ReportState
from stopapp.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


# Analysts' short references (R-2026-000123) count from this sequence. It is internal: the
# public id is a random UUID, so nobody outside can count or enumerate reports.
report_reference_seq = Sequence("report_reference_seq", metadata=db.metadata)


class ExploitationType(db.Model):
    """One entry of the taxonomy; admins can add entries, the app shows `labels`."""

    __tablename__ = "exploitation_types"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    # {"en": "Labour exploitation", "es": "...", ...}
    labels: Mapped[dict] = mapped_column(JSONB, nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


# The predicates of the partial tag and area indexes. The planner uses such an index only when
# the query's WHERE clause holds the same condition, so the queue adds it to its tag and area
# filters, which imply it (see _filters in stopapp/review/queue.py).
NOT_UNTAGGED = text("tags <> '{}'")
NOT_OUTSIDE_AREAS = text("area_codes <> '{}'")


class Report(db.Model):
    """A report from a member of the public."""

    __tablename__ = "reports"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    # report_reference() (migration i9_intake) draws the next number of report_reference_seq.
    reference: Mapped[str] = mapped_column(
        String(20), unique=True, nullable=False, server_default=text("report_reference()")
    )
    # Hashes only: the raw key and the receipt never reach the database.
    idempotency_key_hash: Mapped[bytes] = mapped_column(
        LargeBinary(32), unique=True, nullable=False
    )
    request_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    receipt_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)

    description: Mapped[str] = mapped_column(Text, nullable=False)
    exploitation_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False)
    location = mapped_column(
        Geography(geometry_type="POINT", srid=SRID, spatial_index=True), nullable=True
    )
    location_accuracy_m: Mapped[float | None] = mapped_column(Float)
    location_source: Mapped[str | None] = mapped_column(String(8))
    place: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    occurred_precision: Mapped[str] = mapped_column(String(8), nullable=False, default="unknown")
    ongoing: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # {"victims": 3, "minors": false, "suspects": 1, "description": "..."}
    people: Mapped[dict | None] = mapped_column(JSONB)
    # [{"description": "white van", "registration": "AB12 CDE"}]
    vehicles: Mapped[list | None] = mapped_column(JSONB)
    language: Mapped[str | None] = mapped_column(String(35))
    app_platform: Mapped[str | None] = mapped_column(String(16))
    app_version: Mapped[str | None] = mapped_column(String(32))
    # Fernet token of {"name", "phone", "email"}; present only when the reporter consented.
    contact_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)

    state: Mapped[str] = mapped_column(
        String(16), nullable=False, default=ReportState.RECEIVED.value
    )
    # 0-100, higher is more urgent; set by the triage job, explained by `priority_reasons`.
    priority: Mapped[int | None] = mapped_column(Integer)
    priority_reasons: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), nullable=False, default=list, server_default="{}"
    )
    # A supervisor's override (0-100) wins over the computed priority while set.
    priority_override: Mapped[int | None] = mapped_column(Integer)
    # What the queue sorts by: the override if set, else the computed priority, else 0.
    queue_priority: Mapped[int] = mapped_column(
        Integer, Computed("coalesce(priority_override, priority, 0)", persisted=True)
    )
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id"), index=True
    )
    # Analysts' tags: `dimension:code` from the taxonomy, or `free:<text>`.
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(String(200)), nullable=False, default=list, server_default="{}"
    )
    # Codes of the imported areas whose polygons cover the point (set by the triage job).
    area_codes: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), nullable=False, default=list, server_default="{}"
    )
    # The triage job's attempts; after the last one the report reaches the queue flagged.
    triage_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                                 server_default="0")
    enrichment_failed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                                    server_default="false")
    # For `duplicate`: the report this one repeats.
    duplicate_of_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reports.id"))
    # For `dismissed`: spam, not_trafficking, insufficient, out_of_scope, other.
    dismiss_reason_code: Mapped[str | None] = mapped_column(String(32))
    # Full text over description and place; 'simple' because reports come in many languages.
    search_vector = mapped_column(
        TSVECTOR,
        Computed(
            "to_tsvector('simple', description || ' ' || coalesce(place, ''))", persisted=True
        ),
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow,
        server_default=func.now(),
    )

    messages: Mapped[list[ReportMessage]] = relationship(
        back_populates="report", order_by="ReportMessage.created_at"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("location IS NOT NULL OR place IS NOT NULL", name="location_or_place"),
        CheckConstraint(
            "state IN ('received','new','in_review','actioned','closed','dismissed','duplicate')",
            name="known_state",
        ),
        CheckConstraint(
            "priority_override IS NULL OR priority_override BETWEEN 0 AND 100",
            name="priority_override_range",
        ),
        Index("ix_reports_state_created_at", "state", "created_at"),
        # Partial: a row enters these two only once it has a tag or an area, so a new report
        # (`received`: neither yet) writes neither, nor does the triage job's first UPDATE (its
        # attempt count); a report outside every imported area never enters the second.
        Index("ix_reports_tags", "tags", postgresql_using="gin", postgresql_where=NOT_UNTAGGED),
        Index("ix_reports_area_codes", "area_codes", postgresql_using="gin",
              postgresql_where=NOT_OUTSIDE_AREAS),
        Index("ix_reports_search_vector", "search_vector", postgresql_using="gin"),
    )


class ReportMessage(db.Model):
    """A message on a report: from the reporter, or from an analyst to the reporter."""

    __tablename__ = "report_messages"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), nullable=False, index=True
    )
    sender: Mapped[str] = mapped_column(String(16), nullable=False)
    # The analyst who wrote a reply; never shown to the reporter.
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )

    report: Mapped[Report] = relationship(back_populates="messages")

    __table_args__ = (
        CheckConstraint("sender IN ('reporter','analyst')", name="known_sender"),
    )
