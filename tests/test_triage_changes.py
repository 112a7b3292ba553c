"""Changing reports as staff: If-Match, claims, the transition table, tags, notes, replies, bulk,
contact details and photo files."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from sqlalchemy import select, update

from stopapp.accounts.models import User
from stopapp.db import unit_of_work
from stopapp.extensions import db, settings
from stopapp.media.models import Photo
from stopapp.media.services import storage
from stopapp.reports.models import Report, ReportMessage
from stopapp.review.models import ReportNote, TagCode
from stopapp.review.services import TRANSITIONS
from stopapp.security import ContactCipher
from tests.conftest import submit
from tests.helpers import assert_problem
from tests.triage_helpers import auth, events, make_staff, new_report, seed_tags

REPORTS = "/api/v1/triage/reports"
STATES = ["received", "new", "in_review", "actioned", "closed", "dismissed", "duplicate"]


@pytest.fixture
def staff(app):
    """Tokens by role (two analysts), and ids."""
    people = {role: make_staff(app, role.rstrip("2"), name=role.title())
              for role in ("analyst", "analyst2", "supervisor", "admin")}
    with app.app_context(), unit_of_work():
        seed_tags()
    return people


def token(staff, role):
    return staff[role][1]


def make(app, **fields) -> str:
    with app.app_context(), unit_of_work():
        return str(new_report(**fields).id)


def row(app, report_id) -> Report:
    with app.app_context():
        report = db.session.get(Report, uuid.UUID(report_id))
        db.session.expunge(report)
        return report


def post(client, path, who, version=None, **body):
    return client.post(f"{REPORTS}/{path}", json=body, headers=auth(who, version))


# -- If-Match ----------------------------------------------------------------------------------


def test_change_without_if_match_is_428_and_changes_nothing(app, client, staff):
    report_id = make(app)
    assert_problem(post(client, f"{report_id}/claim", token(staff, "analyst")), 428)
    assert row(app, report_id).assignee_id is None and row(app, report_id).version == 1


def test_stale_if_match_is_412_naming_the_current_version_and_changes_nothing(
    app, client, staff
):
    report_id = make(app)
    analyst = token(staff, "analyst")
    assert post(client, f"{report_id}/claim", analyst, 1).status_code == 200
    body = assert_problem(
        client.patch(f"{REPORTS}/{report_id}", json={"tags": ["sector:car_wash"]},
                     headers=auth(analyst, 1)), 412)
    assert body["version"] == 2
    assert row(app, report_id).tags == []
    for stale in ('"abc"', "*", "1", 'W/"2"'):
        response = client.patch(f"{REPORTS}/{report_id}", json={"tags": []},
                                headers={**auth(analyst), "If-Match": stale})
        assert_problem(response, 412)


def test_successful_change_answers_the_new_etag_and_version(app, client, staff):
    report_id = make(app)
    response = post(client, f"{report_id}/claim", token(staff, "analyst"), 1)
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    assert response.get_json()["version"] == 2 and response.get_json()["state"] == "in_review"
    detail = client.get(f"{REPORTS}/{report_id}", headers=auth(token(staff, "analyst")))
    assert detail.headers["ETag"] == '"2"'


def test_if_match_may_list_several_versions(app, client, staff):
    report_id = make(app)
    response = client.post(f"{REPORTS}/{report_id}/claim",
                           headers={**auth(token(staff, "analyst")), "If-Match": '"7", "1"'})
    assert response.status_code == 200


# -- the transition table ----------------------------------------------------------------------


def _move_body(target: str, duplicate_of: str) -> dict:
    body = {"to": target}
    if target == "dismissed":
        body["reason_code"] = "spam"
    if target == "duplicate":
        body["duplicate_of"] = duplicate_of
    return body


@pytest.mark.parametrize("source", STATES)
def test_every_move_of_the_table_is_allowed_and_every_other_refused(app, client, staff, source):
    supervisor = token(staff, "supervisor")
    original = make(app)
    for target in STATES:
        report_id = make(app, state=source)
        response = post(client, f"{report_id}/transitions", supervisor, 1,
                        **_move_body(target, original))
        if target in TRANSITIONS[source]:
            assert response.status_code == 200, (source, target, response.get_json())
            assert row(app, report_id).state == target
        else:
            body = assert_problem(response, 409)
            assert body["allowed"] == sorted(TRANSITIONS[source]), (source, target)
            assert row(app, report_id).state == source and row(app, report_id).version == 1


def test_the_table_is_the_contracts():
    assert {k: sorted(v) for k, v in TRANSITIONS.items()} == {
        "received": [],
        "new": ["dismissed", "duplicate", "in_review"],
        "in_review": ["actioned", "dismissed", "duplicate", "new"],
        "actioned": ["closed"],
        "closed": ["in_review"], "dismissed": ["in_review"], "duplicate": ["in_review"],
    }


@pytest.mark.parametrize("source", ["closed", "dismissed", "duplicate"])
def test_reopen_is_for_supervisors_only(app, client, staff, source):
    report_id = make(app, state=source)
    response = post(client, f"{report_id}/transitions", token(staff, "analyst"), 1,
                    to="in_review")
    assert_problem(response, 403)
    response = post(client, f"{report_id}/transitions", token(staff, "supervisor"), 1,
                    to="in_review")
    assert response.status_code == 200
    report = row(app, report_id)
    assert (report.state, report.assignee_id) == ("in_review", staff["supervisor"][0])
    assert report.duplicate_of_id is None and report.dismiss_reason_code is None


def test_unknown_target_state_is_422(app, client, staff):
    report_id = make(app)
    assert_problem(post(client, f"{report_id}/transitions", token(staff, "analyst"), 1,
                        to="archived"), 422, "to")


@pytest.mark.parametrize(("body", "field"), [
    ({"to": "dismissed"}, "reason_code"),
    ({"to": "dismissed", "reason_code": "bored"}, "reason_code"),
    ({"to": "dismissed", "reason_code": "other"}, "reason"),
    ({"to": "dismissed", "reason_code": "other", "reason": "  "}, "reason"),
    ({"to": "dismissed", "reason_code": "spam", "duplicate_of": "SELF"}, "duplicate_of"),
    ({"to": "duplicate"}, "duplicate_of"),
    ({"to": "duplicate", "duplicate_of": "SELF"}, "duplicate_of"),
    ({"to": "duplicate", "duplicate_of": "UNKNOWN"}, "duplicate_of"),
    ({"to": "duplicate", "duplicate_of": "A_DUPLICATE"}, "duplicate_of"),
    ({"to": "in_review", "reason_code": "spam"}, "reason_code"),
])
def test_dismissal_and_duplicate_need_their_fields(app, client, staff, body, field):
    report_id = make(app)
    replacements = {"SELF": report_id, "UNKNOWN": str(uuid.uuid4()),
                    "A_DUPLICATE": make(app, state="duplicate")}
    body = {k: replacements.get(v, v) for k, v in body.items()}
    response = post(client, f"{report_id}/transitions", token(staff, "analyst"), 1, **body)
    assert_problem(response, 422, field)
    assert row(app, report_id).state == "new"


def test_dismissal_and_duplicate_are_recorded_and_audited(app, client, staff):
    analyst = token(staff, "analyst")
    first, second, original = make(app), make(app), make(app)
    post(client, f"{first}/transitions", analyst, 1, to="dismissed", reason_code="other",
         reason="A test message from the app team")
    post(client, f"{second}/transitions", analyst, 1, to="duplicate", duplicate_of=original)
    assert row(app, first).dismiss_reason_code == "other"
    assert str(row(app, second).duplicate_of_id) == original
    with app.app_context():
        (dismissal,) = events(uuid.UUID(first), "report.transition")
        assert dismissal.detail == {"from": "new", "to": "dismissed", "reason_code": "other",
                                    "reason": "A test message from the app team"}
        assert dismissal.actor_id == staff["analyst"][0]


def test_release_by_transition_clears_the_assignee(app, client, staff):
    report_id = make(app)
    analyst = token(staff, "analyst")
    post(client, f"{report_id}/claim", analyst, 1)
    assert post(client, f"{report_id}/transitions", analyst, 2, to="new").status_code == 200
    assert row(app, report_id).assignee_id is None


# -- claims ------------------------------------------------------------------------------------


def test_claim_makes_the_caller_assignee_and_is_audited(app, client, staff):
    report_id = make(app)
    post(client, f"{report_id}/claim", token(staff, "analyst"), 1)
    report = row(app, report_id)
    assert (report.state, report.assignee_id) == ("in_review", staff["analyst"][0])
    with app.app_context():
        (claim,) = events(uuid.UUID(report_id), "report.claim")
        assert claim.detail["to"] == str(staff["analyst"][0])
        assert claim.detail["state"] == {"from": "new", "to": "in_review"}


@pytest.mark.parametrize("action", ["claim", "release", "transitions", "tags", "notes",
                                    "replies"])
def test_an_analyst_cannot_act_on_a_report_another_analyst_claimed(app, client, staff, action):
    report_id = make(app, state="in_review", assignee_id=staff["analyst"][0])
    other = token(staff, "analyst2")
    if action == "tags":
        response = client.patch(f"{REPORTS}/{report_id}", json={"tags": []},
                                headers=auth(other, 1))
    elif action in ("notes", "replies"):
        response = post(client, f"{report_id}/{action}", other, body="hello")
    else:
        response = post(client, f"{report_id}/{action}", other, 1,
                        **({"to": "dismissed", "reason_code": "spam"}
                           if action == "transitions" else {}))
    assert_problem(response, 409)
    report = row(app, report_id)
    assert (report.version, report.assignee_id) == (1, staff["analyst"][0])


def test_a_supervisor_may_take_over_another_analysts_claim(app, client, staff):
    report_id = make(app, state="in_review", assignee_id=staff["analyst"][0])
    assert post(client, f"{report_id}/claim", token(staff, "supervisor"), 1).status_code == 200
    assert row(app, report_id).assignee_id == staff["supervisor"][0]


def test_release_gives_the_report_back_to_the_queue(app, client, staff):
    report_id = make(app)
    analyst = token(staff, "analyst")
    post(client, f"{report_id}/claim", analyst, 1)
    response = post(client, f"{report_id}/release", analyst, 2)
    assert response.status_code == 200 and response.get_json()["state"] == "new"
    assert_problem(post(client, f"{report_id}/release", analyst, 3), 409)


def test_claiming_a_closed_report_is_409(app, client, staff):
    report_id = make(app, state="closed")
    assert_problem(post(client, f"{report_id}/claim", token(staff, "analyst"), 1), 409)


def test_assign_is_for_supervisors_and_to_active_staff(app, client, staff):
    report_id = make(app)
    target = str(staff["analyst2"][0])
    assert_problem(post(client, f"{report_id}/assign", token(staff, "analyst"), 1,
                        user_id=target), 403)
    with app.app_context(), unit_of_work():
        db.session.get(User, staff["admin"][0]).active = False
    assert_problem(post(client, f"{report_id}/assign", token(staff, "supervisor"), 1,
                        user_id=str(staff["admin"][0])), 422, "user_id")
    assert_problem(post(client, f"{report_id}/assign", token(staff, "supervisor"), 1,
                        user_id=str(uuid.uuid4())), 422, "user_id")
    response = post(client, f"{report_id}/assign", token(staff, "supervisor"), 1,
                    user_id=target)
    assert response.status_code == 200 and response.get_json()["assignee_id"] == target


# -- tags and priority -----------------------------------------------------------------------


def patch(client, report_id, who, version, body):
    return client.patch(f"{REPORTS}/{report_id}", json=body, headers=auth(who, version))


def test_tags_are_replaced_as_a_whole_and_the_change_audited(app, client, staff):
    report_id = make(app, tags=["sector:car_wash", "free:old"])
    response = patch(client, report_id, token(staff, "analyst"), 1,
                     {"tags": ["control:documents_withheld", "sector:car_wash", "free:white van",
                               "sector:car_wash"]})
    assert response.status_code == 200
    assert row(app, report_id).tags == ["control:documents_withheld", "sector:car_wash",
                                        "free:white van"]
    with app.app_context():
        (change,) = events(uuid.UUID(report_id), "report.tags")
        assert change.detail == {"added": ["control:documents_withheld", "free:white van"],
                                 "removed": ["free:old"]}


@pytest.mark.parametrize("bad", ["sector:no_such_code", "nonsense", "free:", "free: padded",
                                 "free:" + "x" * 101, "free:tab\there", "Sector:car_wash"])
def test_unknown_or_malformed_tags_are_422_naming_them(app, client, staff, bad):
    report_id = make(app)
    response = patch(client, report_id, token(staff, "analyst"), 1,
                     {"tags": ["sector:car_wash", bad]})
    body = assert_problem(response, 422, "tags")
    assert any(repr(bad) in message for message in body["errors"]["tags"])
    assert row(app, report_id).tags == [] and row(app, report_id).version == 1


def test_a_retired_code_may_stay_but_cannot_be_added(app, client, staff):
    with app.app_context(), unit_of_work():
        db.session.execute(update(TagCode).where(TagCode.code == "debt_bondage")
                           .values(retired_at=datetime.now().astimezone()))
    keeps = make(app, tags=["control:debt_bondage"])
    fresh = make(app)
    analyst = token(staff, "analyst")
    assert patch(client, keeps, analyst, 1,
                 {"tags": ["control:debt_bondage", "sector:car_wash"]}).status_code == 200
    assert_problem(patch(client, fresh, analyst, 1, {"tags": ["control:debt_bondage"]}),
                   422, "tags")


def test_priority_override_is_for_supervisors(app, client, staff):
    report_id = make(app, priority=20)
    assert_problem(patch(client, report_id, token(staff, "analyst"), 1,
                         {"priority_override": 90}), 403)
    response = patch(client, report_id, token(staff, "supervisor"), 1, {"priority_override": 90})
    assert response.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(Report.queue_priority)
                                 .where(Report.id == uuid.UUID(report_id))) == 90
        (change,) = events(uuid.UUID(report_id), "report.priority_override")
        assert change.detail == {"from": None, "to": 90}
    assert patch(client, report_id, token(staff, "supervisor"), 2,
                 {"priority_override": None}).status_code == 200
    assert row(app, report_id).priority_override is None


@pytest.mark.parametrize("body", [{}, {"priority_override": 101}, {"priority_override": "9"},
                                  {"tags": "sector:car_wash"}, {"state": "closed"}])
def test_bad_patch_bodies_are_422(app, client, staff, body):
    report_id = make(app)
    assert_problem(patch(client, report_id, token(staff, "supervisor"), 1, body), 422)


# -- notes and replies -------------------------------------------------------------------------


def test_note_is_private_and_audited_without_its_text(app, client, staff):
    report_id = make(app)
    response = post(client, f"{report_id}/notes", token(staff, "analyst"), body="Call the GLAA")
    assert response.status_code == 201
    assert response.get_json()["author"] == {"id": str(staff["analyst"][0]), "name": "Analyst"}
    with app.app_context():
        note = db.session.scalar(select(ReportNote))
        assert note.body == "Call the GLAA" and note.author_id == staff["analyst"][0]
        (audit,) = events(uuid.UUID(report_id), "report.note")
        assert "Call" not in str(audit.detail)
    assert row(app, report_id).version == 1


@pytest.mark.parametrize(("path", "limit"), [("notes", 10_000), ("replies", 5_000)])
def test_note_and_reply_lengths(app, client, staff, path, limit):
    report_id = make(app)
    analyst = token(staff, "analyst")
    for body in ("", "   ", "x" * (limit + 1)):
        assert_problem(post(client, f"{report_id}/{path}", analyst, body=body), 422, "body")
    assert post(client, f"{report_id}/{path}", analyst, body="x" * limit).status_code == 201


def test_reply_reaches_the_reporter_as_from_analyst_without_a_name(app, client, staff):
    created = submit(client).get_json()
    with app.app_context(), unit_of_work():
        db.session.execute(update(Report).where(Report.id == uuid.UUID(created["id"]))
                           .values(state="new"))
    response = post(client, f"{created['id']}/replies", token(staff, "analyst"),
                    body="Thank you. Is the van still there?")
    assert response.status_code == 201
    status = client.get(f"/api/v1/reports/{created['id']}/status",
                        headers={"X-Report-Receipt": created["receipt"]})
    (message,) = status.get_json()["messages"]
    assert message == {"id": response.get_json()["id"], "from": "analyst",
                       "body": "Thank you. Is the van still there?",
                       "sent_at": message["sent_at"]}
    assert "Analyst" not in status.get_data(as_text=True)
    assert str(staff["analyst"][0]) not in status.get_data(as_text=True)
    with app.app_context():
        stored_message = db.session.scalar(select(ReportMessage))
        assert stored_message.author_id == staff["analyst"][0]


# -- bulk --------------------------------------------------------------------------------------


def test_bulk_reports_each_row_on_its_own(app, client, staff):
    fine, claimed, closed = make(app), make(app, state="in_review",
                                             assignee_id=staff["analyst2"][0]), make(app,
                                                                                   state="closed")
    missing = str(uuid.uuid4())
    response = client.post(f"{REPORTS}/bulk", headers=auth(token(staff, "analyst")), json={
        "ids": [fine, claimed, missing, closed], "action": "transition", "to": "dismissed",
        "reason_code": "spam"})
    assert response.status_code == 200
    results = {r["id"]: r for r in response.get_json()["results"]}
    assert results[fine] == {"id": fine, "status": 200, "version": 2}
    assert results[claimed]["status"] == 409 and results[claimed]["problem"]["status"] == 409
    assert results[missing]["status"] == 404
    assert results[closed]["problem"]["allowed"] == ["in_review"]
    assert [row(app, i).state for i in (fine, claimed, closed)] == [
        "dismissed", "in_review", "closed"]


def test_bulk_tags_add_and_remove(app, client, staff):
    first, second = make(app, tags=["free:a"]), make(app, tags=["sector:car_wash"])
    analyst = token(staff, "analyst")
    added = client.post(f"{REPORTS}/bulk", headers=auth(analyst), json={
        "ids": [first, second], "action": "add_tags", "tags": ["sector:car_wash"]})
    assert [r["status"] for r in added.get_json()["results"]] == [200, 200]
    assert row(app, first).tags == ["free:a", "sector:car_wash"]
    removed = client.post(f"{REPORTS}/bulk", headers=auth(analyst), json={
        "ids": [first, second], "action": "remove_tags", "tags": ["free:a", "sector:car_wash"]})
    assert removed.status_code == 200
    assert row(app, first).tags == [] and row(app, second).tags == []
    bad = client.post(f"{REPORTS}/bulk", headers=auth(analyst), json={
        "ids": [first], "action": "add_tags", "tags": ["sector:nope"]})
    assert bad.get_json()["results"][0]["problem"]["errors"]["tags"]


def test_bulk_assign_is_for_supervisors(app, client, staff):
    report_id = make(app)
    body = {"ids": [report_id], "action": "assign", "user_id": str(staff["analyst"][0])}
    assert_problem(client.post(f"{REPORTS}/bulk", headers=auth(token(staff, "analyst")),
                               json=body), 403)
    response = client.post(f"{REPORTS}/bulk", headers=auth(token(staff, "supervisor")), json=body)
    assert response.get_json()["results"][0]["status"] == 200
    assert row(app, report_id).assignee_id == staff["analyst"][0]


@pytest.mark.parametrize(("body", "field"), [
    ({"ids": [], "action": "add_tags", "tags": []}, "ids"),
    ({"ids": ["X"] * 201, "action": "add_tags", "tags": []}, "ids"),
    ({"ids": ["X"], "action": "explode"}, "action"),
    ({"ids": ["X"], "action": "transition"}, "to"),
    ({"ids": ["X"], "action": "add_tags", "tags": [], "to": "new"}, "to"),
    ({"ids": ["X"], "action": "assign"}, "user_id"),
])
def test_bad_bulk_bodies_are_422(app, client, staff, body, field):
    report_id = make(app)
    body["ids"] = [report_id if i == "X" else i for i in body["ids"]]
    assert_problem(client.post(f"{REPORTS}/bulk", headers=auth(token(staff, "supervisor")),
                               json=body), 422, field)


# -- contact details ---------------------------------------------------------------------------


def test_contact_is_for_supervisors_with_a_reason_and_audited(app, client, staff):
    with app.app_context(), unit_of_work():
        cipher = ContactCipher(settings().DATA_ENCRYPTION_KEY)
        report_id = str(new_report(contact_encrypted=cipher.encrypt(
            {"name": "Sam", "phone": "+44 20 7946 0000"})).id)
    url = f"{REPORTS}/{report_id}/contact"
    assert_problem(client.get(f"{url}?reason=curious", headers=auth(token(staff, "analyst"))),
                   403)
    assert_problem(client.get(url, headers=auth(token(staff, "supervisor"))), 422, "reason")
    too_long = client.get(f"{url}?reason={'x' * 501}", headers=auth(token(staff, "supervisor")))
    assert_problem(too_long, 422, "reason")
    # 500 characters as sent (the document's maxLength), white space included.
    padded = client.get(f"{url}?reason={'x' * 499}+++", headers=auth(token(staff, "supervisor")))
    assert_problem(padded, 422, "reason")
    response = client.get(f"{url}?reason=+Police+asked+to+speak+to+the+witness+",
                          headers=auth(token(staff, "supervisor")))
    assert response.status_code == 200
    assert response.get_json() == {"name": "Sam", "phone": "+44 20 7946 0000"}
    assert response.headers["Cache-Control"] == "no-store"
    with app.app_context():
        (read,) = events(uuid.UUID(report_id), "contact.read")
        assert read.detail == {"reason": "Police asked to speak to the witness"}
        assert read.actor_id == staff["supervisor"][0]


def test_contact_is_404_when_there_is_none(app, client, staff):
    report_id = make(app)
    response = client.get(f"{REPORTS}/{report_id}/contact?reason=x",
                          headers=auth(token(staff, "supervisor")))
    assert_problem(response, 404)
    with app.app_context():
        assert events(uuid.UUID(report_id), "contact.read") == []


# -- photo files -------------------------------------------------------------------------------


def _stored_photo(app, status="ready") -> tuple[str, str]:
    with app.app_context(), unit_of_work():
        report = new_report()
        display = storage().put(b"\xff\xd8display\xff\xd9", ".jpg")
        thumb = storage().put(b"\xff\xd8thumb\xff\xd9", ".jpg")
        photo = Photo(report_id=report.id, idempotency_key_hash=b"k" * 32,
                      upload_digest=b"\0" * 32,
                      status=status, display_key=display, thumb_key=thumb)
        db.session.add(photo)
        db.session.flush()
        return str(photo.id), str(report.id)


@pytest.mark.parametrize("variant", ["display", "thumb"])
def test_photo_files_are_served_to_staff_uncached_and_audited(app, client, staff, variant):
    photo_id, report_id = _stored_photo(app)
    url = f"/api/v1/triage/photos/{photo_id}/{variant}"
    assert_problem(client.get(url), 401)
    response = client.get(url, headers=auth(token(staff, "analyst")))
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert response.data == b"\xff\xd8" + variant.encode() + b"\xff\xd9"
    assert response.headers["Cache-Control"] == "no-store"
    with app.app_context():
        (read,) = events(uuid.UUID(report_id), "photo.read")
        assert read.detail == {"photo_id": photo_id, "variant": variant}


@pytest.mark.parametrize("status", ["processing", "rejected"])
def test_a_photo_that_is_not_ready_is_404(app, client, staff, status):
    photo_id, _ = _stored_photo(app, status)
    assert_problem(client.get(f"/api/v1/triage/photos/{photo_id}/display",
                              headers=auth(token(staff, "analyst"))), 404)
    assert_problem(client.get(f"/api/v1/triage/photos/{uuid.uuid4()}/thumb",
                              headers=auth(token(staff, "analyst"))), 404)
