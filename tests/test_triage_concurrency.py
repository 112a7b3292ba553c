"""Races on one report, with data committed for real and requests on parallel connections."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select

from stopapp.audit.models import AuditEvent
from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.reports.models import Report
from tests.triage_helpers import auth, make_staff, new_report

pytestmark = pytest.mark.committed


def race(app, requests) -> list:
    """Run each request function on its own thread and test client, all released at once."""
    barrier = threading.Barrier(len(requests))
    answers: list = [None] * len(requests)

    def run(i, request):
        client = app.test_client()
        barrier.wait()
        response = request(client)
        answers[i] = (response.status_code, response.get_json(), response.headers.get("ETag"))

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def committed_report(app) -> uuid.UUID:
    with app.app_context(), unit_of_work():
        return new_report().id


def test_twenty_concurrent_claims_have_exactly_one_winner(committed_app):
    app = committed_app
    analysts = [make_staff(app) for _ in range(20)]
    report_id = committed_report(app)
    url = f"/api/v1/triage/reports/{report_id}/claim"
    answers = race(app, [
        lambda client, t=t: client.post(url, headers=auth(t, 1)) for _, t in analysts
    ])
    statuses = sorted(status for status, _, _ in answers)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 409, 412}
    winner = analysts[[s for s, _, _ in answers].index(200)][0]
    with app.app_context():
        report = db.session.get(Report, report_id)
        assert (report.assignee_id, report.state, report.version) == (winner, "in_review", 2)
        claims = db.session.scalars(select(AuditEvent).where(
            AuditEvent.report_id == report_id, AuditEvent.action == "report.claim")).all()
        assert [c.actor_id for c in claims] == [winner]


def test_two_clients_racing_on_if_match_get_one_success_and_one_412(committed_app):
    app = committed_app
    _, first = make_staff(app, "supervisor")
    _, second = make_staff(app, "supervisor")
    report_id = committed_report(app)
    url = f"/api/v1/triage/reports/{report_id}"
    answers = race(app, [
        lambda client: client.patch(url, json={"tags": ["free:first"]}, headers=auth(first, 1)),
        lambda client: client.patch(url, json={"tags": ["free:second"]},
                                    headers=auth(second, 1)),
    ])
    assert sorted(status for status, _, _ in answers) == [200, 412]
    (winner,) = [a for a in answers if a[0] == 200]
    (loser,) = [a for a in answers if a[0] == 412]
    assert winner[2] == '"2"' and loser[1]["version"] == 2
    with app.app_context():
        report = db.session.get(Report, report_id)
        assert report.version == 2 and report.tags == winner[1]["tags"]
