"""Every model, imported in one place so that Alembic and create_app see the whole schema."""

from stopapp.media.models import Photo
from stopapp.reports.models import ExploitationType, Report, ReportMessage

__all__ = ["ExploitationType", "Photo", "Report", "ReportMessage"]
