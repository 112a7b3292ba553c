"""Every model, imported in one place so that Alembic and create_app see the whole schema."""

from stopapp.accounts.models import ApiToken, User
from stopapp.areas.models import Area
from stopapp.audit.models import AuditEvent
from stopapp.forwarding.models import Authority, Forward
from stopapp.media.models import Photo
from stopapp.reports.models import ExploitationType, Report, ReportMessage
from stopapp.review.models import ReportLink, ReportNote, TagCode

__all__ = [
    "ApiToken",
    "Area",
    "AuditEvent",
    "Authority",
    "ExploitationType",
    "Forward",
    "Photo",
    "Report",
    "ReportLink",
    "ReportMessage",
    "ReportNote",
    "TagCode",
    "User",
]
