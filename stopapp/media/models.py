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
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stopapp.constants import SRID, PhotoStatus
from stopapp.extensions import db
from stopapp.reports.models import Report, utcnow


class Photo(db.Model):
    """A photo: the quarantined upload until processed, then two metadata-free JPEG copies.

    `gps_location` and `captured_at*` come from the original's EXIF before it is stripped and
    are for analysts only; they never leave the system with the photo. Nothing else of the
    original is kept that could match it to this row: no plain hash, byte count, format or file
    name (`width` and `height` are the display copy's).
    """

    __tablename__ = "photos"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # What a retry of the upload is recognised by, kept only for PHOTO_RETRY_WINDOW_S and then
    # erased together (services.forget_expired_uploads). The digest is an HMAC under
    # PHOTO_DIGEST_KEY, never a plain hash: whoever holds the original could compute a plain
    # hash and prove that it was sent, and to which report.
    idempotency_key_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    upload_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(
        String(12), nullable=False, default=PhotoStatus.PROCESSING.value, index=True
    )
    reject_reason: Mapped[str | None] = mapped_column(String(32))
    # Set while the raw upload waits in quarantine; cleared once it is deleted.
    quarantine_key: Mapped[str | None] = mapped_column(String(200))
    display_key: Mapped[str | None] = mapped_column(String(200))
    thumb_key: Mapped[str | None] = mapped_column(String(200))
    # Of the display copy (long side at most 2048 px), never the original's.
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
        CheckConstraint(
            "(idempotency_key_hash IS NULL) = (upload_digest IS NULL)", name="retry_pair"
        ),
        # The reconciler's search for digests past the retry window.
        Index(
            "ix_photos_retry_until",
            "created_at",
            postgresql_where=text("upload_digest IS NOT NULL"),
        ),
    )
