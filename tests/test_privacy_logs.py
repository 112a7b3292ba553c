"""Logs never hold report text, contact details, receipts or exact coordinates."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.problem import render_error
from stopapp.extensions import db
from tests.conftest import DEAD_DATABASE_URL, DEAD_REDIS_URL, VALID_REPORT, new_key, submit
from workers.context import JobDatabaseError, in_app_context

SECRET_REPORT = {
    **VALID_REPORT,
    "description": "Zanzibar-canary-description",
    "place": "Canary-place-street",
    "location": {"lat": 51.49271234, "lon": -0.22401234, "accuracy_m": 5, "source": "gps"},
    "contact": {"name": "Canary Name", "phone": "+44 7700 900999", "email": "canary@example.org",
                "consent_to_contact": True},
}
CANARIES = ["Zanzibar-canary", "Canary-place", "51.4927", "-0.2240", "Canary Name",
            "7700 900999", "canary@example.org"]


def all_logged(caplog) -> str:
    return "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
    )


def assert_nothing_leaked(caplog, extra: list[str] = ()) -> None:
    logged = all_logged(caplog)
    for canary in [*CANARIES, *extra]:
        assert canary not in logged, f"{canary!r} reached the logs"


def test_normal_submission_logs_nothing_sensitive(client, caplog):
    caplog.set_level(logging.DEBUG)
    created = submit(client, SECRET_REPORT).get_json()
    client.get(f"/api/v1/reports/{created['id']}/status",
               headers={"X-Report-Receipt": created["receipt"]})
    assert_nothing_leaked(caplog, [created["receipt"]])


def test_submission_during_redis_outage_logs_nothing_sensitive(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    response = submit(make_app(REDIS_URL=DEAD_REDIS_URL).test_client(), SECRET_REPORT)
    assert response.status_code == 201
    # The outage itself is logged (by the rate limiter: the request no longer queues a job).
    assert "in memory" in all_logged(caplog)
    assert_nothing_leaked(caplog, [response.get_json()["receipt"]])


def test_database_outage_logs_no_sql_parameters(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    response = submit(make_app(DATABASE_URL=DEAD_DATABASE_URL).test_client(), SECRET_REPORT)
    assert response.status_code == 503
    assert_nothing_leaked(caplog)


def test_duplicate_key_race_logs_no_sql_parameters(committed_app, caplog):
    # The IntegrityError path of a lost race carries the row's values in its message unless
    # the engine hides parameters.
    caplog.set_level(logging.DEBUG)
    key = new_key()
    client = committed_app.test_client()
    submit(client, SECRET_REPORT, key=key)
    submit(client, SECRET_REPORT, key=key)
    assert_nothing_leaked(caplog)


def test_database_error_reaches_the_logs_without_the_values(app, caplog):
    # A statement that fails for real with a canary as its parameter. PostgreSQL quotes the
    # value in its own message, so the renderer must not log that message.
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        with pytest.raises(DBAPIError) as failure:
            db.session.execute(text("SELECT CAST(:value AS integer)"), {"value": "Zanzibar-canary"})
        db.session.rollback()
        response = render_error(failure.value)
    assert response.status_code == 500
    assert "InvalidTextRepresentation" in all_logged(caplog)
    assert_nothing_leaked(caplog)


def test_database_error_leaves_a_job_without_the_values(app):
    @in_app_context
    def failing_job(value: str) -> None:
        db.session.execute(text("SELECT CAST(:value AS integer)"), {"value": value})

    with app.app_context():
        with pytest.raises(JobDatabaseError) as failure:
            failing_job("Zanzibar-canary")
        db.session.rollback()
    error = failure.value
    assert "Zanzibar-canary" not in str(error)
    assert error.__cause__ is None and error.__suppress_context__
