"""The report page's actions through Flask's test client: each form changes the report through
its service, is refused without its CSRF token, explains bad input without changing anything,
leaves supervisors' actions to supervisors, and on a stale version names who changed what and
keeps what the analyst typed."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from rq import Queue
from sqlalchemy import select

from stopapp.accounts import services as accounts
from stopapp.db import unit_of_work
from stopapp.extensions import db, settings
from stopapp.forwarding.models import Forward
from stopapp.reports.models import Report, ReportMessage, utcnow
from stopapp.review.models import ReportNote, TagCode
from stopapp.security import ContactCipher, receipt_hash
from tests.forwarding.conftest import HF, WESTMINSTER, Scene, load_london_areas, make_staff
from tests.triage_helpers import new_report, pretend_key, seed_tags

PASSWORD = "correct horse battery"
RECEIPT = "K7QF-2MZD-9XWP-4TNA-HV3C"
CONTACT = {"name": "Rasa <b>K</b>", "email": "rasa@example.org", "consent_to_contact": True}


@pytest.fixture
def app(committed_app):
    """Committed for real, as in test_triage_pages.py: each request is its own transaction."""
    with committed_app.app_context(), unit_of_work():
        seed_tags()
    return committed_app


def _user(app, email: str, role: str, name: str) -> None:
    with app.app_context(), unit_of_work():
        accounts.create_user(email, role, PASSWORD, name=name)


def _signed_in(app, email: str):
    client = app.test_client()
    page = client.get("/triage/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*? value="([^"]+)"', page).group(1)
    response = client.post("/triage/sign-in", data={"csrf_token": token, "email": email,
                                                    "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def ana(app):
    _user(app, "ana@example.org", "analyst", "Ana Analyst")
    return _signed_in(app, "ana@example.org")


@pytest.fixture
def sam(app):
    _user(app, "sam@example.org", "supervisor", "Sam Supervisor")
    return _signed_in(app, "sam@example.org")


def _report(app, **fields) -> uuid.UUID:
    with app.app_context(), unit_of_work():
        report = new_report(**fields)
        report.receipt_hash = receipt_hash(RECEIPT)
        return report.id


def _load(app, report_id) -> Report:
    with app.app_context():
        report = db.session.get(Report, report_id)
        db.session.expunge(report)
        return report


def _hidden(page: str, name: str) -> str | None:
    match = re.search(rf'name="{re.escape(name)}" type="hidden" value="([^"]*)"', page) or \
        re.search(rf'type="hidden" name="{re.escape(name)}" value="([^"]*)"', page) or \
        re.search(rf'name="{re.escape(name)}"[^>]*value="([^"]*)"', page)
    return match.group(1) if match else None


def _token(page: str) -> str:
    return re.search(r'name="[a-z_-]*csrf_token"[^>]*? value="([^"]+)"', page).group(1)


def post(client, report_id, action: str, prefix: str, data: dict | None = None, *,
         page: str | None = None, csrf: bool = True, **kwargs):
    """Submit one of the report page's forms as a browser would: its CSRF token and, for a
    change, the version and history the page showed (from `page`, else a fresh read)."""
    page = page if page is not None else client.get(f"/triage/reports/{report_id}").get_data(
        as_text=True)
    form = {f"{prefix}-{key}": value for key, value in (data or {}).items()}
    for hidden in ("version", "seen"):
        value = _hidden(page, f"{prefix}-{hidden}")
        if value is not None and f"{prefix}-{hidden}" not in form:
            form[f"{prefix}-{hidden}"] = value
    if csrf:
        form[f"{prefix}-csrf_token"] = _token(page)
    return client.post(f"/triage/reports/{report_id}/{action}", data=form, **kwargs)


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


# -- claims --------------------------------------------------------------------------------------


def test_claim_makes_the_analyst_the_assignee_and_says_so(app, ana):
    report_id = _report(app)
    response = post(ana, report_id, "claim", "claim")
    assert response.status_code == 302
    assert response.location == f"/triage/reports/{report_id}#actions"
    report = _load(app, report_id)
    assert report.state == "in_review" and report.assignee_id is not None
    page = text_of(ana.get(response.location))
    assert "You have claimed this report." in page
    assert "Ana Analyst claimed it" in page  # the history, in words


def test_release_gives_the_report_back_to_the_queue(app, ana):
    report_id = _report(app)
    post(ana, report_id, "claim", "claim")
    response = post(ana, report_id, "release", "release")
    assert response.status_code == 302
    report = _load(app, report_id)
    assert report.state == "new" and report.assignee_id is None


def test_supervisor_assigns_to_someone_else(app, sam):
    _user(app, "bo@example.org", "analyst", "Bo Analyst")
    with app.app_context():
        bo = accounts.get_user("bo@example.org").id
    report_id = _report(app)
    page = sam.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert f'value="{bo}"' in page and "Bo Analyst (analyst)" in page
    response = post(sam, report_id, "assign", "assign", {"user_id": str(bo)}, page=page)
    assert response.status_code == 302
    assert _load(app, report_id).assignee_id == bo


def test_analyst_sees_no_assign_form_and_is_refused_when_posting_one(app, ana):
    _user(app, "bo@example.org", "analyst", "Bo Analyst")
    with app.app_context():
        bo = accounts.get_user("bo@example.org").id
    report_id = _report(app)
    page = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert 'id="assign-form"' not in page
    version = _hidden(page, "claim-version")
    response = post(ana, report_id, "assign", "assign",
                    {"user_id": str(bo), "version": version}, page=page)
    assert response.status_code == 403
    assert "There is a problem" in text_of(response)
    assert _load(app, report_id).assignee_id is None


def test_claim_of_a_report_another_analyst_holds_is_refused_with_their_reason(app, ana):
    _user(app, "bo@example.org", "analyst", "Bo Analyst")
    bo = _signed_in(app, "bo@example.org")
    report_id = _report(app)
    post(bo, report_id, "claim", "claim")
    page = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert 'id="claim-form"' not in page  # no button that can only be refused
    assert "Bo Analyst has claimed this report." in page
    response = post(ana, report_id, "claim", "claim",
                    {"version": _hidden(page, "dismiss-version")}, page=page)
    assert response.status_code == 409
    assert "Another analyst has claimed this report" in text_of(response)


# -- state moves ---------------------------------------------------------------------------------


def test_page_offers_the_moves_allowed_from_the_state(app, ana):
    report_id = _report(app, state="in_review")
    page = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    for move in ("move-new-form", "move-actioned-form", "dismiss-form", "duplicate-form"):
        assert f'id="{move}"' in page
    assert 'id="move-closed-form"' not in page and 'id="move-in_review-form"' not in page
    closed = _report(app, state="closed")
    page = ana.get(f"/triage/reports/{closed}").get_data(as_text=True)
    assert 'id="move-in_review-form"' not in page  # reopening is for supervisors
    assert "Only a supervisor can reopen" in page


def test_actioned_then_closed(app, ana):
    report_id = _report(app, state="in_review")
    assert post(ana, report_id, "move/actioned", "move-actioned").status_code == 302
    assert post(ana, report_id, "move/closed", "move-closed").status_code == 302
    assert _load(app, report_id).state == "closed"


def test_dismiss_with_a_reason_code(app, ana):
    report_id = _report(app)
    response = post(ana, report_id, "dismiss", "dismiss", {"reason_code": "spam"})
    assert response.status_code == 302
    report = _load(app, report_id)
    assert report.state == "dismissed" and report.dismiss_reason_code == "spam"
    assert "The report is dismissed." in text_of(ana.get(response.location))


def test_dismiss_without_a_reason_code_is_explained_and_changes_nothing(app, ana):
    report_id = _report(app)
    response = post(ana, report_id, "dismiss", "dismiss", {"reason": "typed words"})
    body = text_of(response)
    assert response.status_code == 422
    assert '<a href="#dismiss-reason_code">Choose why the report is dismissed.</a>' in body
    assert "typed words</textarea>" in body
    assert _load(app, report_id).state == "new"


def test_dismiss_as_other_needs_the_reason_in_words(app, ana):
    report_id = _report(app)
    response = post(ana, report_id, "dismiss", "dismiss", {"reason_code": "other"})
    assert response.status_code == 422
    assert '<a href="#dismiss-reason">Explain why you dismiss it.</a>' in text_of(response)
    assert _load(app, report_id).state == "new"
    response = post(ana, report_id, "dismiss", "dismiss",
                    {"reason_code": "other", "reason": "A school project"})
    assert response.status_code == 302
    assert _load(app, report_id).dismiss_reason_code == "other"


def test_duplicate_by_the_other_report_s_reference(app, ana):
    original = _report(app)
    report_id = _report(app)
    reference = _load(app, original).reference
    response = post(ana, report_id, "duplicate", "duplicate",
                    {"duplicate_of": f"  {reference.lower()} "})
    assert response.status_code == 302
    report = _load(app, report_id)
    assert report.state == "duplicate" and report.duplicate_of_id == original


def test_duplicate_of_an_unknown_reference_is_explained_and_changes_nothing(app, ana):
    report_id = _report(app)
    response = post(ana, report_id, "duplicate", "duplicate", {"duplicate_of": "R-1999-424242"})
    body = text_of(response)
    assert response.status_code == 422
    assert "No report has the reference R-1999-424242." in body
    assert 'value="R-1999-424242"' in body
    assert _load(app, report_id).state == "new"


def test_duplicate_of_itself_is_refused(app, ana):
    report_id = _report(app)
    reference = _load(app, report_id).reference
    response = post(ana, report_id, "duplicate", "duplicate", {"duplicate_of": reference})
    assert response.status_code == 422
    assert "Must be another report." in text_of(response)


def test_reopen_is_refused_to_an_analyst_and_done_by_a_supervisor(app, ana, sam):
    report_id = _report(app, state="dismissed", dismiss_reason_code="spam")
    page = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    version = _hidden(page, "claim-version") or str(_load(app, report_id).version)
    response = post(ana, report_id, "move/in_review", "move-in_review",
                    {"version": version}, page=page)
    assert response.status_code == 403
    assert _load(app, report_id).state == "dismissed"
    response = post(sam, report_id, "move/in_review", "move-in_review")
    assert response.status_code == 302
    assert _load(app, report_id).state == "in_review"


# -- tags and priority ---------------------------------------------------------------------------


def test_tags_are_saved_as_a_whole_set_with_free_tags(app, ana):
    report_id = _report(app, tags=["sector:car_wash", "free:old"])
    page = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert '<legend class="label">Sector or venue</legend>' in page
    assert re.search(r'value="sector:car_wash" id="[^"]+" checked', page)
    response = post(ana, report_id, "tags", "tags", {
        "tags": ["control:debt_bondage", "sector:nail_bar_beauty"],
        "free_tags": "blue van, night shift\nfree:kings road",
    }, page=page)
    assert response.status_code == 302
    assert _load(app, report_id).tags == [
        "control:debt_bondage", "sector:nail_bar_beauty", "free:blue van", "free:night shift",
        "free:kings road",
    ]


def test_retired_codes_are_offered_only_where_the_report_has_them(app, ana):
    retire(app, ("control", "documents_withheld"), utcnow())
    try:
        plain = _report(app)
        tagged = _report(app, tags=["control:documents_withheld"])
        assert 'value="control:documents_withheld"' not in ana.get(
            f"/triage/reports/{plain}").get_data(as_text=True)
        page = ana.get(f"/triage/reports/{tagged}").get_data(as_text=True)
        assert 'value="control:documents_withheld"' in page and "(retired)" in page
    finally:
        # The vocabulary is not truncated between tests: put it back as it was.
        retire(app, ("control", "documents_withheld"), None)


def retire(app, key: tuple[str, str], when) -> None:
    with app.app_context(), unit_of_work():
        db.session.get(TagCode, key).retired_at = when


def test_an_unknown_tag_is_explained_and_the_choice_kept(app, ana):
    report_id = _report(app)
    response = post(ana, report_id, "tags", "tags",
                    {"tags": ["sector:car_wash", "sector:moon_base"], "free_tags": "kept words"})
    body = text_of(response)
    assert response.status_code == 422
    assert "'sector:moon_base': unknown tag." in body
    assert re.search(r'value="sector:car_wash" id="[^"]+" checked', body)
    assert "kept words</textarea>" in body
    assert _load(app, report_id).tags == []


def test_supervisor_overrides_the_priority_and_clears_it(app, sam):
    report_id = _report(app)
    assert post(sam, report_id, "priority", "priority",
                {"priority_override": "90"}).status_code == 302
    assert _load(app, report_id).priority_override == 90
    assert post(sam, report_id, "priority", "priority",
                {"priority_override": ""}).status_code == 302
    assert _load(app, report_id).priority_override is None


def test_priority_out_of_range_is_explained(app, sam):
    report_id = _report(app)
    response = post(sam, report_id, "priority", "priority", {"priority_override": "101"})
    assert response.status_code == 422
    assert "Enter a number from 0 to 100." in text_of(response)


def test_analyst_cannot_override_the_priority(app, ana):
    report_id = _report(app)
    page = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert 'id="priority-form"' not in page
    response = post(ana, report_id, "priority", "priority",
                    {"priority_override": "90", "version": _hidden(page, "claim-version")},
                    page=page)
    assert response.status_code == 403
    assert _load(app, report_id).priority_override is None


# -- notes and replies ---------------------------------------------------------------------------


def test_a_note_is_saved_for_staff(app, ana):
    report_id = _report(app)
    response = post(ana, report_id, "notes", "note", {"body": "Called the <council>."})
    assert response.status_code == 302
    page = ana.get(response.location).get_data(as_text=True)
    assert "Called the &lt;council&gt;." in page and "Your note is saved." in page


def test_an_empty_note_is_explained(app, ana):
    report_id = _report(app)
    response = post(ana, report_id, "notes", "note", {"body": "   "})
    assert response.status_code == 422
    assert '<a href="#note-body">Write the note first.</a>' in text_of(response)


def test_a_reply_reaches_the_reporter_s_status_without_a_name(app, ana):
    report_id = _report(app)
    response = post(ana, report_id, "replies", "reply",
                    {"body": "Thank you. Was the van white or grey?"})
    assert response.status_code == 302
    status = app.test_client().get(f"/api/v1/reports/{report_id}/status",
                                   headers={"X-Report-Receipt": RECEIPT})
    assert status.status_code == 200
    messages = status.get_json()["messages"]
    assert [(m["from"], m["body"]) for m in messages] == [
        ("analyst", "Thank you. Was the van white or grey?")]
    assert "Ana" not in status.get_data(as_text=True)


def test_a_reply_too_long_is_explained_kept_and_not_sent(app, ana):
    report_id = _report(app)
    body = "word " * 1001
    response = post(ana, report_id, "replies", "reply", {"body": body})
    assert response.status_code == 422
    page = text_of(response)
    assert "A reply is at most 5000 characters." in page
    assert body.strip() in page
    with app.app_context():
        assert db.session.scalars(select(ReportMessage).where(
            ReportMessage.report_id == report_id)).all() == []


@pytest.mark.parametrize(("path", "prefix", "fields"), [
    ("notes", "note", {"body": "before\x00after"}),
    ("replies", "reply", {"body": "before\x00after"}),
    ("dismiss", "dismiss", {"reason_code": "other", "reason": "before\x00after"}),
])
def test_a_nul_in_staff_text_is_refused_by_the_service_not_the_database(app, ana, path, prefix,
                                                                         fields):
    """PostgreSQL stores no NUL in text or jsonb: the service says so (422) instead of a 500."""
    report_id = _report(app)
    response = post(ana, report_id, path, prefix, fields)
    assert response.status_code == 422
    assert "1 to " in text_of(response) and "without NUL" in text_of(response)
    with app.app_context():
        assert db.session.scalars(select(ReportNote)).all() == []
        assert db.session.scalars(select(ReportMessage).where(
            ReportMessage.report_id == report_id)).all() == []
    assert _load(app, report_id).state == "new"


def test_a_note_on_a_report_another_analyst_holds_is_refused_and_kept(app, ana):
    _user(app, "bo@example.org", "analyst", "Bo Analyst")
    report_id = _report(app)
    post(_signed_in(app, "bo@example.org"), report_id, "claim", "claim")
    response = post(ana, report_id, "notes", "note", {"body": "my careful words"})
    assert response.status_code == 409
    assert "my careful words</textarea>" in text_of(response)
    with app.app_context():
        assert db.session.scalars(select(ReportNote)).all() == []


# -- contact details -----------------------------------------------------------------------------


def _with_contact(app) -> uuid.UUID:
    with app.app_context(), unit_of_work():
        report = new_report()
        report.contact_encrypted = ContactCipher(settings().DATA_ENCRYPTION_KEY).encrypt(CONTACT)
        return report.id


def test_supervisor_sees_the_contact_details_on_that_response_only(app, sam):
    report_id = _with_contact(app)
    response = post(sam, report_id, "contact", "contact", {"reason": "Police asked to call"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "rasa@example.org" in body and "Rasa &lt;b&gt;K&lt;/b&gt;" in body
    assert response.headers["Cache-Control"] == "no-store"
    assert "rasa" not in response.headers.get("Set-Cookie", "")
    assert "rasa@example.org" not in sam.get(f"/triage/reports/{report_id}").get_data(
        as_text=True)


def test_contact_view_needs_a_reason(app, sam):
    report_id = _with_contact(app)
    response = post(sam, report_id, "contact", "contact", {"reason": ""})
    assert response.status_code == 422
    assert "rasa@example.org" not in response.get_data(as_text=True)


def test_analyst_is_refused_the_contact_details(app, ana):
    report_id = _with_contact(app)
    page = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert 'id="contact-form"' not in page
    response = post(ana, report_id, "contact", "contact", {"reason": "curious"}, page=page)
    assert response.status_code == 403
    assert "rasa@example.org" not in response.get_data(as_text=True)


# -- CSRF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("action, prefix, data", [
    ("claim", "claim", {}), ("release", "release", {}), ("assign", "assign", {"user_id": "x"}),
    ("move/actioned", "move-actioned", {}), ("dismiss", "dismiss", {"reason_code": "spam"}),
    ("duplicate", "duplicate", {"duplicate_of": "R-1"}), ("tags", "tags", {"free_tags": "x"}),
    ("priority", "priority", {"priority_override": "5"}), ("notes", "note", {"body": "x"}),
    ("replies", "reply", {"body": "x"}), ("contact", "contact", {"reason": "x"}),
    ("forwards", "forward", {"authority_ids": str(uuid.uuid4())}),
])
def test_every_action_is_refused_without_its_csrf_token(app, sam, action, prefix, data):
    report_id = _report(app)
    before = _load(app, report_id).version
    response = post(sam, report_id, action, prefix, data, csrf=False)
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert _load(app, report_id).version == before


# -- two analysts on one report ------------------------------------------------------------------


def test_stale_dismiss_names_who_changed_what_and_keeps_the_typed_text(app, ana, sam):
    report_id = _report(app)
    stale = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert post(sam, report_id, "tags", "tags", {"tags": ["sector:car_wash"]}).status_code == 302
    assert post(sam, report_id, "claim", "claim").status_code == 302
    response = post(ana, report_id, "dismiss", "dismiss",
                    {"reason_code": "other", "reason": "Reporter says it was a joke"},
                    page=stale)
    body = text_of(response)
    assert response.status_code == 409
    assert "Someone else changed this report first" in body
    assert "Sam Supervisor</strong> changed the tags: added sector:car_wash" in body
    assert "Sam Supervisor</strong> claimed it" in body
    assert "Reporter says it was a joke</textarea>" in body
    assert re.search(r'value="other"[^>]*checked|checked[^>]*value="other"', body)
    assert _load(app, report_id).state == "in_review"
    # The form now holds the current version: sending it again is the analyst's own choice.
    fresh = _hidden(body, "dismiss-version")
    assert fresh == str(_load(app, report_id).version)


def test_a_version_that_is_not_a_number_is_refused_and_changes_nothing(app, ana):
    report_id = _report(app)
    response = post(ana, report_id, "claim", "claim", {"version": "latest"})
    assert response.status_code == 428
    assert "There is a problem" in text_of(response)
    assert _load(app, report_id).assignee_id is None


def test_stale_tags_keep_the_analyst_s_choice_with_the_fresh_version(app, ana, sam):
    report_id = _report(app)
    stale = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    post(sam, report_id, "dismiss", "dismiss", {"reason_code": "spam"})
    response = post(ana, report_id, "tags", "tags",
                    {"tags": ["control:debt_bondage"], "free_tags": "red door"}, page=stale)
    body = text_of(response)
    assert response.status_code == 409
    assert ("Sam Supervisor</strong> moved it from new to dismissed (Spam, a test or a prank)"
            in body)
    assert re.search(r'value="control:debt_bondage" id="[^"]+" checked', body)
    assert "red door</textarea>" in body
    assert _load(app, report_id).tags == []
    again = post(ana, report_id, "tags", "tags",
                 {"tags": ["control:debt_bondage"], "free_tags": "red door"}, page=body)
    assert again.status_code == 302
    assert _load(app, report_id).tags == ["control:debt_bondage", "free:red door"]


# -- forwarding to authorities -------------------------------------------------------------------


@pytest.fixture
def authorities(app) -> dict[str, str]:
    """The London boroughs as areas and authorities registered through the API, as in
    tests/forwarding: three for H&F (where _report's reports are) and one for Westminster."""
    with app.app_context(), unit_of_work():
        load_london_areas()
    scene = Scene(app, make_staff(app, "admin"), make_staff(app, "analyst"))
    ids = {
        "police": scene.authority("H&F Police", ["p@example.org"], [HF],
                                  exploitation_types=["labour"]),
        "council": scene.authority("H&F Council", ["c@example.org"], [HF]),
        "locked": scene.authority("Locked Unit", ["l@example.org"], [HF], encrypted_only=True),
        "westminster": scene.authority("Westminster Police", ["w@example.org"], [WESTMINSTER]),
    }
    with app.app_context(), unit_of_work():
        pretend_key(ids["council"])
    return ids


def _forwards(app, report_id) -> list[Forward]:
    with app.app_context():
        rows = list(db.session.scalars(select(Forward).where(Forward.report_id == report_id)
                                       .order_by(Forward.created_at, Forward.id)))
        db.session.expunge_all()
        return rows


def _recipient(page: str, authority_id: str) -> str:
    """The checkbox of one authority in the forwarding form, with its hint."""
    return re.search(rf'<input type="checkbox" name="forward-authority_ids" value="{authority_id}"'
                     rf'.*?</li>', page, re.S).group(0)


def test_forward_form_suggests_authorities_with_reasons_and_encryption(app, ana, authorities):
    report_id = _report(app)
    page = text_of(ana.get(f"/triage/reports/{report_id}"))
    assert "Suggested for this report: H&F Council, H&F Police, Locked Unit." in page
    suggested, others = page.split('<legend class="label">Suggested authorities</legend>')[1] \
        .split('<legend class="label">Other authorities</legend>')
    assert authorities["westminster"] in others and authorities["westminster"] not in suggested
    police = _recipient(page, authorities["police"])
    assert ("Covers Hammersmith and Fulham. Handles labour exploitation. "
            "Mail to it is not encrypted.") in police
    council = _recipient(page, authorities["council"])
    assert "Covers Hammersmith and Fulham. Handles every type. Mail to it is PGP-encrypted." \
        in council
    locked = _recipient(page, authorities["locked"])
    assert "disabled" in locked and "Accepts only encrypted mail and has no usable PGP key" \
        in locked
    assert not re.search(r'name="forward-authority_ids"[^>]*checked', page)  # none by default
    # No consent (no contact details): the box is there, explained, and cannot be ticked.
    assert re.search(r'<input [^>]*disabled id="forward-include_contact"', page)
    assert "The reporter gave no contact details" in page
    assert re.search(r'checked id="forward-location_precision_m-0"[^>]*value=""', page)


def test_forward_to_two_authorities_actions_the_report_and_queues_the_emails(
    app, ana, authorities, redis_conn
):
    report_id = _report(app)
    response = post(ana, report_id, "forwards", "forward", {
        "authority_ids": [authorities["police"], authorities["council"]],
        "location_precision_m": "100", "note": "Two reports agree.",
    })
    assert response.status_code == 302
    assert response.location == f"/triage/reports/{report_id}#forward"
    assert _load(app, report_id).state == "actioned"
    forwards = _forwards(app, report_id)
    assert sorted(str(f.authority_id) for f in forwards) == sorted(
        [authorities["police"], authorities["council"]])
    assert {(f.status, f.include_contact, f.location_precision_m, f.note) for f in forwards} == {
        ("queued", False, 100, "Two reports agree.")}
    # The delivery jobs went to Redis once the request's transaction had committed.
    assert sorted(Queue("forwarding", connection=redis_conn).job_ids) == sorted(
        f"send-forward-{f.id}" for f in forwards)
    page = text_of(ana.get(response.location))
    assert "The report is forwarded" in page
    assert ("Ana Analyst forwarded it to H&F Police and H&F Council, with the location to "
            "about 100 m") in page


@pytest.mark.parametrize(("data", "shown"), [
    pytest.param({"note": "careful words"},
                 ['<a href="#forward-authority_ids">Choose at least one authority to forward it '
                  'to.</a>', "careful words</textarea>"],
                 id="no authority: explained, the note kept"),
    pytest.param({"authority_ids": ["police"], "note": "before\x00after"},
                 ['<a href="#forward-note">At most 10000 characters, without NUL.</a>'],
                 id="a NUL in the note: refused by the service, not the database"),
    pytest.param({"authority_ids": ["police"], "include_contact": "y"},
                 ["The reporter did not consent to be contacted."],
                 id="contact details without the reporter's consent"),
])
def test_a_refused_forward_says_why_and_stores_nothing(app, ana, authorities, data, shown):
    report_id = _report(app)
    if "authority_ids" in data:
        data = {**data, "authority_ids": [authorities[name] for name in data["authority_ids"]]}
    response = post(ana, report_id, "forwards", "forward", data)
    body = text_of(response)
    assert response.status_code == 422
    for fragment in shown:
        assert fragment in body
    assert _load(app, report_id).state == "new" and _forwards(app, report_id) == []


def test_forward_with_contact_details_when_the_reporter_consented(app, ana, authorities):
    report_id = _with_contact(app)
    page = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert re.search(r'<input aria-describedby="[^"]+" id="forward-include_contact"', page)
    response = post(ana, report_id, "forwards", "forward",
                    {"authority_ids": [authorities["police"]], "include_contact": "y"}, page=page)
    assert response.status_code == 302
    assert [f.include_contact for f in _forwards(app, report_id)] == [True]


def test_forward_to_an_encrypted_only_authority_without_a_key_is_refused_by_name(
    app, ana, authorities
):
    report_id = _report(app)
    response = post(ana, report_id, "forwards", "forward",
                    {"authority_ids": [authorities["police"], authorities["locked"]]})
    body = text_of(response)
    assert response.status_code == 422
    assert "Locked Unit accepts only encrypted mail and has no usable PGP key." in body
    assert re.search(rf'value="{authorities["police"]}" id="[^"]+" [^>]*checked', body)
    assert _load(app, report_id).state == "new" and _forwards(app, report_id) == []


def test_stale_forward_names_who_changed_what_and_keeps_the_choices(app, ana, sam, authorities):
    report_id = _report(app)
    stale = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert post(sam, report_id, "tags", "tags", {"tags": ["sector:car_wash"]}).status_code == 302
    response = post(ana, report_id, "forwards", "forward",
                    {"authority_ids": [authorities["police"]], "note": "Urgent: vans at 5am"},
                    page=stale)
    body = text_of(response)
    assert response.status_code == 409
    assert "Someone else changed this report first" in body
    assert "Sam Supervisor</strong> changed the tags: added sector:car_wash" in body
    assert "Urgent: vans at 5am</textarea>" in body
    assert re.search(rf'value="{authorities["police"]}" id="[^"]+" [^>]*checked', body)
    assert _load(app, report_id).state == "new" and _forwards(app, report_id) == []
    assert _hidden(body, "forward-version") == str(_load(app, report_id).version)


def test_forward_of_a_report_another_analyst_claimed_is_not_offered_and_refused(
    app, ana, authorities
):
    _user(app, "bo@example.org", "analyst", "Bo Analyst")
    report_id = _report(app)
    post(_signed_in(app, "bo@example.org"), report_id, "claim", "claim")
    page = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert 'id="forward-form"' not in page
    response = post(ana, report_id, "forwards", "forward",
                    {"authority_ids": [authorities["police"]],
                     "version": str(_load(app, report_id).version)}, page=page)
    assert response.status_code == 409
    assert "Another analyst has claimed this report" in text_of(response)
    assert _load(app, report_id).state == "in_review" and _forwards(app, report_id) == []


def test_forward_is_not_offered_from_a_state_that_cannot_be_forwarded(app, ana, authorities):
    report_id = _report(app, state="closed")
    page = ana.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert 'id="forward-form"' not in page and "Forward to authorities" not in page
