"""GET /triage/users, /triage/taxonomy and /triage/audit, and the taxonomy admin services."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from stopapp.accounts import services as accounts
from stopapp.audit.models import AuditEvent
from stopapp.audit.services import record
from stopapp.db import unit_of_work
from stopapp.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from stopapp.extensions import db
from stopapp.reports.models import utcnow
from stopapp.review import taxonomy
from stopapp.review.models import TagCode
from stopapp.review.taxonomy_data import CODES, DIMENSIONS
from tests.helpers import assert_problem

PASSWORD = "correct horse battery staple"


def staff(app, role, email=None, name=None, active=True):
    """A user with a token; returns (id, Authorization headers)."""
    with app.app_context(), unit_of_work():
        user = accounts.create_user(email or f"{role}@example.org", role, PASSWORD,
                                    name=name or role.title())
        _, token = accounts.issue_token(user)
        user.active = active
        return user.id, {"Authorization": f"Bearer {token}"}


# --- users ---

def test_users_lists_active_staff_without_emails_for_analysts(app, client):
    analyst_id, headers = staff(app, "analyst", name="Zoe")
    supervisor_id, _ = staff(app, "supervisor", name="adam")
    staff(app, "analyst", "gone@example.org", "Gone", active=False)
    response = client.get("/api/v1/triage/users", headers=headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == [
        {"id": str(supervisor_id), "name": "adam", "role": "supervisor"},
        {"id": str(analyst_id), "name": "Zoe", "role": "analyst"},
    ]


def test_users_shows_admins_emails_and_inactive_users(app, client):
    staff(app, "analyst", "gone@example.org", "Gone", active=False)
    admin_id, headers = staff(app, "admin", name="Root")
    body = client.get("/api/v1/triage/users", headers=headers).get_json()
    assert [(u["name"], u["email"], u["active"]) for u in body] == [
        ("Gone", "gone@example.org", False), ("Root", "admin@example.org", True),
    ]


# --- taxonomy ---

def test_every_dimension_and_code_is_seeded_with_labels_and_crosswalks(app, client):
    _, headers = staff(app, "analyst")
    response = client.get("/api/v1/triage/taxonomy", headers=headers)
    assert response.status_code == 200
    dimensions = response.get_json()["dimensions"]
    assert [d["name"] for d in dimensions] == list(DIMENSIONS)
    assert {"type", "sector", "control", "sign", "finance", "recruitment"} <= set(DIMENSIONS)
    for dimension in dimensions:
        assert [c["code"] for c in dimension["codes"]] == [
            code for code, _, _ in CODES[dimension["name"]]
        ]
        for code in dimension["codes"]:
            assert code["label"] and code["retired"] is False and code["retired_at"] is None
            assert code["tag"] == f"{dimension['name']}:{code['code']}"
            assert taxonomy.CODE_PATTERN.match(code["code"]), code
        codes = {c["code"] for c in dimension["codes"]}
        # Every dimension can say "other" and "unknown" (TAXONOMY.md design rule 2).
        assert codes & {"other", "other_exploitation", "other_control"}
        if dimension["name"] != "platform":
            assert codes & {"unknown", "control_unknown"}
    by_tag = {c["tag"]: c for d in dimensions for c in d["codes"]}
    assert len(by_tag) > 140
    assert by_tag["type:labour_exploitation"]["crosswalk"] == {
        "CTDC": ["isForcedLabour"], "HTCDS": ["ForcedLabour", "ChildLabour"],
        "NRM": ["Labour exploitation"],
    }
    assert by_tag["sector:car_wash"]["crosswalk"]["ISIC"] == ["G45"]
    assert by_tag["control:debt_bondage"]["crosswalk"]["CTDC-syn"] == ["meansDebtBondageEarnings"]
    assert by_tag["control:isolation"]["crosswalk"]["_unverified"] == ["CTDC-syn"]
    assert by_tag["sign:long_hours"]["crosswalk"] == {"ILO": ["Excessive overtime"]}
    assert "FinCEN" in by_tag["finance:funnel_account"]["crosswalk"]["source"][0]


def test_all_eleven_ilo_indicators_are_covered_by_control_codes(app):
    ilo = {name for _, _, crosswalk in CODES["control"] for name in crosswalk.get("ILO", [])}
    assert len(ilo) == 11


def test_admin_adds_relabels_and_retires_a_code_with_audit(app, client):
    _, headers = staff(app, "analyst")
    with app.app_context(), unit_of_work():
        admin = accounts.create_user("root@example.org", "admin", PASSWORD)
        added = taxonomy.add_tag_code(admin, "sector", "shisha_bar", "Shisha bars")
        assert added.position == len(CODES["sector"])
        taxonomy.relabel_tag_code(admin, "sector", "shisha_bar", "  Shisha and hookah bars ")
        taxonomy.relabel_tag_code(admin, "sector", "shisha_bar", "Shisha and hookah bars")
        assert "sector:shisha_bar" in taxonomy.active_tag_codes()
        taxonomy.retire_tag_code(admin, "sector", "shisha_bar")
        taxonomy.retire_tag_code(admin, "sector", "shisha_bar")
        assert "sector:shisha_bar" not in taxonomy.active_tag_codes()
        assert "sector:shisha_bar" in taxonomy.known_tag_codes()
        # This admin's events only: the append-only trail keeps those of committed tests
        # (the admin pages' browser and page tests) run earlier in the session.
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "taxonomy.change", AuditEvent.actor_id == admin.id
        ).order_by(AuditEvent.id)).all()
        assert [(e.actor_id, e.detail["change"]) for e in events] == [
            (admin.id, "add"), (admin.id, "relabel"), (admin.id, "retire")
        ]
        assert events[1].detail["to"] == "Shisha and hookah bars"
    body = client.get("/api/v1/triage/taxonomy", headers=headers).get_json()
    [sector] = [d for d in body["dimensions"] if d["name"] == "sector"]
    last = sector["codes"][-1]
    assert (last["code"], last["label"], last["retired"]) == (
        "shisha_bar", "Shisha and hookah bars", True)
    assert last["retired_at"].endswith("Z")


@pytest.mark.parametrize("dimension, code, label, error", [
    ("colour", "red", "Red", ValidationError),
    ("sector", "Shisha Bar", "Shisha", ValidationError),
    ("sector", "a__b", "A", ValidationError),
    ("sector", "shisha", "   ", ValidationError),
    ("sector", "car_wash", "Again", ConflictError),
])
def test_bad_new_codes_are_refused(app, dimension, code, label, error):
    with app.app_context():
        admin = accounts.create_user("root@example.org", "admin", PASSWORD)
        before = taxonomy.known_tag_codes()
        with pytest.raises(error):
            taxonomy.add_tag_code(admin, dimension, code, label)
        assert taxonomy.known_tag_codes() == before


def test_a_retired_code_cannot_be_added_again(app):
    with app.app_context():
        admin = accounts.create_user("root@example.org", "admin", PASSWORD)
        taxonomy.retire_tag_code(admin, "sign", "long_hours")
        with pytest.raises(ConflictError, match="retired"):
            taxonomy.add_tag_code(admin, "sign", "long_hours", "Long hours")


def test_only_admins_change_the_taxonomy(app):
    with app.app_context():
        supervisor = accounts.create_user("sup@example.org", "supervisor", PASSWORD)
        for change in (lambda: taxonomy.add_tag_code(supervisor, "sector", "x", "X"),
                       lambda: taxonomy.relabel_tag_code(supervisor, "sector", "car_wash", "X"),
                       lambda: taxonomy.retire_tag_code(supervisor, "sector", "car_wash")):
            with pytest.raises(ForbiddenError):
                change()
        assert db.session.get(TagCode, ("sector", "car_wash")).retired_at is None


def test_unknown_codes_are_not_found(app):
    with app.app_context():
        admin = accounts.create_user("root@example.org", "admin", PASSWORD)
        with pytest.raises(NotFoundError):
            taxonomy.retire_tag_code(admin, "sector", "nope")


# --- audit ---

def add_events(app, count, **kwargs):
    with app.app_context(), unit_of_work():
        actor = kwargs.pop("actor", None)
        return [record(actor, kwargs.get("action", "test.event"),
                       report_id=kwargs.get("report_id"), detail={"n": n}) for n in range(count)]


def test_audit_pages_newest_first_with_the_actors_email(app, client):
    supervisor_id, headers = staff(app, "supervisor")
    with app.app_context(), unit_of_work():
        supervisor = db.session.get(accounts.User, supervisor_id)
        for n in range(5):
            record(supervisor if n % 2 else None, "test.event", detail={"n": n})
    first = client.get("/api/v1/triage/audit?action=test.event&limit=3", headers=headers)
    assert first.status_code == 200, first.get_data(as_text=True)
    body = first.get_json()
    assert [e["detail"]["n"] for e in body["items"]] == [4, 3, 2]
    assert body["items"][0]["actor"] is None
    assert body["items"][1]["actor"] == {
        "id": str(supervisor_id), "email": "supervisor@example.org"
    }
    assert body["items"][0]["at"].endswith("Z") and body["items"][0]["report_id"] is None
    # An event written while paging does not shift the next page.
    add_events(app, 1)
    second = client.get(f"/api/v1/triage/audit?action=test.event&limit=3"
                        f"&cursor={body['next_cursor']}", headers=headers).get_json()
    assert [e["detail"]["n"] for e in second["items"]] == [1, 0]
    assert second["next_cursor"] is None


def test_audit_filters_by_report_actor_action_and_time(app, client):
    supervisor_id, headers = staff(app, "supervisor")
    report_id = uuid.uuid4()
    add_events(app, 2, report_id=report_id, action="report.read")
    add_events(app, 1, action="report.read")
    with app.app_context(), unit_of_work():
        record(db.session.get(accounts.User, supervisor_id), "report.note", report_id=report_id)

    def ids(query):
        response = client.get(f"/api/v1/triage/audit?{query}", headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [(e["action"], e["report_id"]) for e in response.get_json()["items"]]

    rid = str(report_id)
    assert ids(f"report_id={rid}") == [("report.note", rid), ("report.read", rid),
                                       ("report.read", rid)]
    assert ids(f"report_id={rid}&action=report.read") == [("report.read", rid)] * 2
    assert ids(f"actor_id={supervisor_id}") == [("report.note", rid)]
    now = utcnow()
    later = (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    earlier = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert ids(f"report_id={rid}&from={later}") == []
    assert len(ids(f"report_id={rid}&from={earlier}&to={later}")) == 3
    assert ids(f"report_id={rid}&to={earlier}") == []


@pytest.mark.parametrize("query, field", [
    ("report_id=nope", "report_id"),
    ("limit=0", "limit"),
    ("limit=101", "limit"),
    ("from=2026-01-01T00:00:00", "from"),
    ("cursor=bm9wZQ", "cursor"),
    ("cursor=%%%", "cursor"),
    ("action=a&action=b", "action"),
    ("colour=red", "colour"),
])
def test_audit_refuses_bad_queries(app, client, query, field):
    _, headers = staff(app, "supervisor")
    assert_problem(client.get(f"/api/v1/triage/audit?{query}", headers=headers), 422, field)


def test_audit_is_for_supervisors_and_admins(app, client):
    _, analyst = staff(app, "analyst")
    _, admin = staff(app, "admin")
    assert_problem(client.get("/api/v1/triage/audit", headers=analyst), 403)
    assert client.get("/api/v1/triage/audit", headers=admin).status_code == 200


def test_an_audit_page_is_one_sql_statement(app, client):
    supervisor_id, headers = staff(app, "supervisor")
    with app.app_context(), unit_of_work():
        users = [accounts.create_user(f"u{n}@example.org", "analyst", PASSWORD) for n in range(5)]
        for user in users:
            record(user, "test.event", report_id=uuid.uuid4())
    statements = []

    def count(conn, cursor, statement, *args):
        if "audit_events" in statement:
            statements.append(statement)

    with app.app_context():
        engine = db.session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            body = client.get("/api/v1/triage/audit?action=test.event", headers=headers).get_json()
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(body["items"]) == 5 and all(e["actor"]["email"] for e in body["items"])
    assert len(statements) == 1
