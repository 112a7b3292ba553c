"""The staff API for authorities and forwarding: rules, permissions, audit, the outbox."""

from __future__ import annotations

import uuid

from rq import Queue
from sqlalchemy import select, update

from stopapp.audit.models import AuditEvent
from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.models import Report
from tests.forwarding.conftest import FORWARDS_URL, HF, make_staff, new_report, report_version
from tests.helpers import assert_problem

AUTHORITIES = "/api/v1/triage/authorities"


def body(name="H&F Police", **fields):
    return {"name": name, "emails": ["Police@Example.org"], "area_codes": [HF], **fields}


def events(app, action: str, report_id: str | None = None) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        if report_id:
            query = query.where(AuditEvent.report_id == uuid.UUID(report_id))
        rows = list(db.session.scalars(query))
        db.session.expunge_all()
        return rows


def own_events(app, action: str, authority_id: str) -> list[AuditEvent]:
    return [e for e in events(app, action) if e.detail["authority_id"] == authority_id]


def test_admin_registers_an_authority_with_a_checked_key_and_staff_can_list_it(
    scene_at, smtp_server, pgp_keys
):
    scene = scene_at(smtp_server().port)
    response = scene.client.post(AUTHORITIES, headers=scene.admin.headers,
                                 json=body(pgp_public_key=pgp_keys["good"].public,
                                           exploitation_types=["labour"]))
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    assert created["pgp_fingerprint"] == pgp_keys["good"].fingerprint
    assert created["emails"] == ["police@example.org"] and created["active"] is True
    assert created["encrypted_only"] is False and created["exploitation_types"] == ["labour"]
    listed = scene.client.get(AUTHORITIES, headers=scene.analyst.headers)
    assert listed.status_code == 200 and listed.get_json() == [created]
    # The trail is append-only and outlives other tests' authorities: find this one's events.
    [event] = own_events(scene.app, "authority.create", created["id"])
    assert event.actor_id == scene.admin.id and event.detail["name"] == "H&F Police"

    changed = scene.client.patch(f"{AUTHORITIES}/{created['id']}", headers=scene.admin.headers,
                                 json={"active": False, "pgp_public_key": None})
    assert changed.status_code == 200
    assert (changed.get_json()["active"], changed.get_json()["pgp_fingerprint"]) == (False, None)
    [event] = own_events(scene.app, "authority.update", created["id"])
    assert event.detail["changed"] == ["active", "pgp_public_key"]


def test_only_admins_manage_authorities(scene_at, smtp_server):
    scene = scene_at(smtp_server().port)
    authority = scene.authority("H&F Police", ["p@example.org"], [HF])
    for role in ("analyst", "supervisor"):
        staff = make_staff(scene.app, role)
        assert_problem(scene.client.post(AUTHORITIES, headers=staff.headers,
                                         json=body("Other")), 403)
        assert_problem(scene.client.patch(f"{AUTHORITIES}/{authority}", headers=staff.headers,
                                          json={"active": False}), 403)
    assert_problem(scene.client.get(AUTHORITIES), 401)
    assert len(scene.client.get(AUTHORITIES, headers=scene.admin.headers).get_json()) == 1


def test_bad_authorities_are_refused_naming_the_field(scene_at, smtp_server, pgp_keys):
    scene = scene_at(smtp_server().port)
    private = pgp_keys["gpg"].export_keys(pgp_keys["good"].fingerprint, secret=True,
                                          expect_passphrase=False)
    cases = [
        (body(area_codes=["E09999999"]), "area_codes"),
        (body(exploitation_types=["nonsense"]), "exploitation_types"),
        (body(emails=[]), "emails"),
        (body(pgp_public_key="not a key"), "pgp_public_key"),
        (body(pgp_public_key=private), "pgp_public_key"),
        (body(pgp_public_key=pgp_keys["expired"].public), "pgp_public_key"),
        (body(pgp_public_key=pgp_keys["sign_only"].public), "pgp_public_key"),
        (body(colour="red"), "colour"),
    ]
    for payload, field in cases:
        response = scene.client.post(AUTHORITIES, headers=scene.admin.headers, json=payload)
        assert_problem(response, 422, field)
    problem = scene.client.post(AUTHORITIES, headers=scene.admin.headers,
                                json=body(pgp_public_key=pgp_keys["expired"].public)).get_json()
    assert problem["errors"]["pgp_public_key"] == ["This key has expired."]
    assert scene.client.get(AUTHORITIES, headers=scene.admin.headers).get_json() == []


def test_cli_adds_an_authority_with_its_key(scene_at, smtp_server, pgp_keys, tmp_path):
    scene = scene_at(smtp_server().port)
    key_file = tmp_path / "key.asc"
    key_file.write_text(pgp_keys["good"].public)
    result = scene.app.test_cli_runner().invoke(args=[
        "authorities", "add", "Met Police", "--email", "a@example.org", "--email",
        "b@example.org", "--area", HF, "--type", "labour", "--pgp-key", str(key_file),
        "--encrypted-only",
    ])
    assert result.exit_code == 0, result.output
    assert pgp_keys["good"].fingerprint in result.output
    [row] = scene.client.get(AUTHORITIES, headers=scene.analyst.headers).get_json()
    assert row["emails"] == ["a@example.org", "b@example.org"] and row["encrypted_only"]
    bad = scene.app.test_cli_runner().invoke(args=[
        "authorities", "add", "X", "--email", "x@example.org", "--area", "nowhere"])
    assert bad.exit_code != 0 and "nowhere" in bad.output


def test_forward_needs_if_match_and_a_current_version(scene_at, smtp_server):
    scene = scene_at(smtp_server().port)
    police = scene.authority("H&F Police", ["p@example.org"], [HF])
    report_id, _ = new_report(scene.app)
    version = report_version(scene.app, report_id)
    missing = scene.client.post(FORWARDS_URL.format(report_id), headers=scene.analyst.headers,
                                json={"authority_ids": [police]})
    assert_problem(missing, 428)
    stale = scene.forward(report_id, [police], version=version - 1 if version > 1 else 99)
    assert assert_problem(stale, 412)["version"] == version
    assert report_version(scene.app, report_id) == version


def test_forward_actions_the_report_writes_the_outbox_and_queues_after_commit(
    scene_at, smtp_server, redis_conn
):
    scene = scene_at(smtp_server().port)
    police = scene.authority("H&F Police", ["p@example.org"], [HF])
    council = scene.authority("Council", ["c@example.org"], [HF])
    report_id, _ = new_report(scene.app, state="in_review")
    version = report_version(scene.app, report_id)
    response = scene.forward(report_id, [police, council], note="Two reports agree.")
    assert response.status_code == 202
    assert response.headers["ETag"] == f'"{version + 1}"'
    forwards = response.get_json()["forwards"]
    assert [(f["authority_id"], f["status"]) for f in forwards] == [
        (police, "queued"), (council, "queued")]
    with scene.app.app_context():
        assert db.session.get(Report, uuid.UUID(report_id)).state == "actioned"
    assert sorted(Queue("forwarding", connection=redis_conn).job_ids) == sorted(
        f"send-forward-{f['id']}" for f in forwards)
    [event] = events(scene.app, "report.forward", report_id)
    assert event.actor_id == scene.analyst.id and event.at is not None
    assert event.detail["from"] == "in_review" and event.detail["to"] == "actioned"
    assert sorted(event.detail["forward_ids"]) == sorted(f["id"] for f in forwards)
    assert "Two reports agree." not in str(event.detail)

    # A later forward from `actioned` adds a recipient and moves the version on again.
    again = scene.forward(report_id, [police])
    assert again.status_code == 202 and again.headers["ETag"] == f'"{version + 2}"'
    listed = scene.client.get(f"/api/v1/triage/forwards?report_id={report_id}",
                              headers=scene.analyst.headers).get_json()
    assert len(listed) == 3
    assert set(listed[0]) == {"id", "report_id", "authority_id", "status", "attempts",
                              "last_error", "message_id", "sent_at"}


def test_forward_is_refused_from_closed_states_and_for_unknown_authorities(scene_at,
                                                                         smtp_server):
    scene = scene_at(smtp_server().port)
    police = scene.authority("H&F Police", ["p@example.org"], [HF])
    retired = scene.authority("Retired", ["r@example.org"], [HF], active=False)
    report_id, _ = new_report(scene.app)
    problem = assert_problem(scene.forward(report_id, [police, retired, str(uuid.uuid4())]),
                             422, "authority_ids")
    assert len(problem["errors"]["authority_ids"]) == 2
    for state in ("closed", "dismissed", "duplicate", "received"):
        with scene.app.app_context(), unit_of_work():
            db.session.execute(update(Report).where(Report.id == uuid.UUID(report_id))
                               .values(state=state))
        assert assert_problem(scene.forward(report_id, [police]), 409)["allowed_from"] == [
            "new", "in_review", "actioned"]
    assert_problem(scene.forward(str(uuid.uuid4()), [police], version=1), 404)
    assert_problem(scene.client.get("/api/v1/triage/forwards?status=lost",
                                    headers=scene.analyst.headers), 422, "status")


def test_an_analyst_cannot_forward_a_report_another_analyst_claimed(scene_at, smtp_server):
    scene = scene_at(smtp_server().port)
    police = scene.authority("H&F Police", ["p@example.org"], [HF])
    report_id, _ = new_report(scene.app, state="in_review")
    with scene.app.app_context(), unit_of_work():
        db.session.execute(update(Report).where(Report.id == uuid.UUID(report_id))
                           .values(assignee_id=scene.analyst.id))
    other = make_staff(scene.app, "analyst")
    assert_problem(scene.forward(report_id, [police], staff=other), 409)
    supervisor = make_staff(scene.app, "supervisor")
    assert scene.forward(report_id, [police], staff=supervisor).status_code == 202
    assert scene.forward(report_id, [police]).status_code == 202  # the claimant
