"""Photos attached to reports."""

from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geography
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stopapp.constants import SRID, PhotoStatus
from stopapp.extensions import db
from stopapp.reports.models import Report, utcnow


class Photo(db.Model):
    """A photo: the quarantined upload until processed, then two metadata-free JPEG copies.

    `gps_location` and `captured_at*` come from the original's EXIF before it is stripped and
    are for analysts only; they never leave the system with the photo.
    """

    __tablename__ = "photos"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), nullable=False, index=True
    )
    idempotency_key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    upload_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    upload_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    detected_format: Mapped[str] = mapped_column(String(8), nullable=False)
    status: Mapped[str] = mapped_column(
        String(12), nullable=False, default=PhotoStatus.PROCESSING.value, index=True
    )
    reject_reason: Mapped[str | None] = mapped_column(String(32))
    # Set while the raw upload waits in quarantine; cleared once it is deleted.
    quarantine_key: Mapped[str | None] = mapped_column(String(200))
    display_key: Mapped[str | None] = mapped_column(String(200))
    thumb_key: Mapped[str | None] = mapped_column(String(200))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    gps_location = mapped_column(Geography(geometry_type="POINT", srid=SRID, spatial_index=False))
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The camera's local clock when it recorded no UTC offset.
    captured_at_local: Mapped[datetime | None] = mapped_column(DateTime(timezone=False))
    # 64-bit perceptual hash of the clean display copy (never of the original), for finding
    # photos that look alike across reports.
    phash: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    report: Mapped[Report] = relationship()

    __table_args__ = (
        UniqueConstraint("report_id", "idempotency_key_hash", name="uq_photos_report_idempotency"),
        CheckConstraint("status IN ('processing','ready','rejected')", name="known_status"),
    )
