"""The analysts' side of a report: tag vocabulary, private notes, possible-duplicate links."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stopapp.extensions import db
from stopapp.reports.models import Report, utcnow


class TagCode(db.Model):
    """One code of the analysts' tag vocabulary; a tag on a report is `dimension:code`.

    `crosswalk` maps partner schemes to their codes ({"CTDC": "isForcedLabour", "NRM": ...}),
    so exports can be mapped without re-tagging. A retired code stays valid on old reports
    but cannot be added again.
    """

    __tablename__ = "tag_codes"

    dimension: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(100), primary_key=True)
    label: Mapped[str] = mapped_column(Text, nullable=False)
    crosswalk: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def tag(self) -> str:
        return f"{self.dimension}:{self.code}"


class ReportNote(db.Model):
    """A private note by staff on a report; never shown to the reporter or forwarded."""

    __tablename__ = "report_notes"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), nullable=False, index=True
    )
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )


class ReportLink(db.Model):
    """A possible duplicate or corroborating report, stored in both directions."""

    __tablename__ = "report_links"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    other_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    distance_m: Mapped[float | None] = mapped_column(Float)
    hours_apart: Mapped[float] = mapped_column(Float, nullable=False)
    # pg_trgm similarity of the descriptions, 0 to 1.
    text_similarity: Mapped[float] = mapped_column(Float, nullable=False)
    # True when at least one pair of photos looks alike (perceptual hash).
    photo_match: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )

    __table_args__ = (CheckConstraint("report_id <> other_id", name="not_self"),)


# The queue's keyset orders (stopapp/review/queue.py). The priority order is written with the
# negated priority so that one row comparison seeks in it; the open queue (new and in_review,
# the default view) has its own partial indexes, much smaller than the whole table.
_OPEN = text("state IN ('new', 'in_review')")
Index(
    "ix_reports_open_priority", -Report.queue_priority, Report.created_at, Report.id,
    postgresql_where=_OPEN,
)
Index("ix_reports_open_created", Report.created_at, Report.id, postgresql_where=_OPEN)
Index("ix_reports_state_priority", Report.state, -Report.queue_priority, Report.created_at,
      Report.id)
