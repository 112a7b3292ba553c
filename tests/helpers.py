"""Helpers shared by the test modules."""

from __future__ import annotations

from sqlalchemy import func, select

from stopapp.extensions import db
from stopapp.models import Photo, Report, ReportMessage


def counts() -> dict[str, int]:
    """Rows in each table that a request may write."""
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Report, ReportMessage, Photo)
    }


def assert_problem(response, status: int, field: str | None = None) -> dict:
    """The response is an RFC 9457 problem with `status`, naming `field` if given."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["title"] and body["type"]
    if field is not None:
        assert field in body.get("errors", {}), body
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "SELECT" not in text
    return body
