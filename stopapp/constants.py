"""Constants shared across features."""

from __future__ import annotations

import enum

# Every geometry and geography in the system is WGS 84.
SRID = 4326


class ReportState(enum.StrEnum):
    """Triage states of a report (see DESIGN.md)."""

    RECEIVED = "received"  # stored, enrichment not yet done
    NEW = "new"  # in the analysts' queue
    IN_REVIEW = "in_review"
    ACTIONED = "actioned"
    CLOSED = "closed"
    DISMISSED = "dismissed"
    DUPLICATE = "duplicate"


# What the reporter may see of each triage state: coarse, and safe to show on a phone that
# someone else may pick up.
REPORTER_STATUS = {
    ReportState.RECEIVED: "received",
    ReportState.NEW: "received",
    ReportState.IN_REVIEW: "under_review",
    ReportState.ACTIONED: "actioned",
    ReportState.CLOSED: "closed",
    ReportState.DISMISSED: "closed",
    ReportState.DUPLICATE: "closed",
}


class LocationSource(enum.StrEnum):
    GPS = "gps"
    MAP = "map"
    TEXT = "text"


class OccurredPrecision(enum.StrEnum):
    EXACT = "exact"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    UNKNOWN = "unknown"


class PhotoStatus(enum.StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    REJECTED = "rejected"


class MessageSender(enum.StrEnum):
    REPORTER = "reporter"
    ANALYST = "analyst"
