"""The queue page's bulk actions, priority reasons and area outlines through Flask's test client
(CSRF on, as in production)."""

from __future__ import annotations

import html
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from stopapp.accounts import services as accounts
from stopapp.areas.services import import_areas
from stopapp.db import unit_of_work
from stopapp.errors import ValidationError
from stopapp.extensions import db
from stopapp.reports.models import Report
from stopapp.review.enrichment import POINTS, REASON_LABELS, reason_label
from stopapp.review.services import DISMISS_REASON_CODES, find_report_id
from tests.conftest import DEAD_REDIS_URL
from tests.test_triage_pages import PASSWORD, csrf_token, sign_in
from tests.triage_helpers import new_report, seed_tags
from triage.bulk_forms import BulkForm
from triage.bulk_results import RESULTS_KEPT_S
from triage.forms import DISMISS_REASON_LABELS

BULK = "/triage/reports/bulk"
BOROUGHS = "geo/london_hf_kc_westminster.geojson"


@pytest.fixture
def app(committed_app):
    return committed_app


def _user(app, email: str, role: str = "analyst", name: str = "Ana") -> uuid.UUID:
    with app.app_context(), unit_of_work():
        return accounts.create_user(email, role, PASSWORD, name=name).id


@pytest.fixture
def analyst(app, client):
    _user(app, "ana@example.org")
    assert sign_in(client).status_code == 302
    return client


def _reports(app, *fields: dict) -> list[uuid.UUID]:
    with app.app_context(), unit_of_work():
        seed_tags()
        return [new_report(**f).id for f in fields]


def _stored(app, report_id: uuid.UUID) -> Report:
    with app.app_context():
        report = db.session.get(Report, report_id)
        db.session.expunge(report)
        return report


def _post(client, data: dict, query: str = "", follow_redirects: bool = True):
    """The bulk form sent; by default the queue page the browser is then sent to."""
    return client.post(BULK + query, data={"csrf_token": csrf_token(client, "/triage/help"),
                                           **data}, follow_redirects=follow_redirects)


def _results(body: str) -> dict[str, str]:
    """Reference -> its result, from the results panel."""
    panel = body[body.index('id="bulk-results"'):]
    panel = panel[:panel.index("</section>")]
    rows = re.findall(r'<a href="[^"]+">([^<]+)</a></td>\s*<td>(.*?)</td>', panel, re.S)
    return {ref: html.unescape(re.sub(r"<[^>]+>", "", text)).strip() for ref, text in rows}


def test_bulk_without_csrf_token_is_refused(app, analyst):
    (report_id,) = _reports(app, {})
    response = analyst.post(BULK, data={"ids": str(report_id), "action": "dismiss",
                                        "reason_code": "spam"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert _stored(app, report_id).state == "new"


def test_bulk_needs_sign_in(app, client):
    response = client.post(BULK, data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302 and "/triage/sign-in" in response.location


def test_bulk_dismiss_reports_each_row_and_changes_only_what_it_may(app, analyst):
    bob = _user(app, "bob@example.org", name="Bob")
    mine, free, claimed, untouched = _reports(
        app, {}, {"state": "in_review"}, {"state": "in_review"}, {})
    with app.app_context(), unit_of_work():
        db.session.get(Report, claimed).assignee_id = bob
    references = {i: _stored(app, i).reference for i in (mine, free, claimed)}
    response = _post(analyst, {"ids": [str(mine), str(free), str(claimed)], "action": "dismiss",
                               "reason_code": "not_trafficking"}, "?state=new&state=in_review")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    results = _results(body)
    assert results == {
        references[mine]: "Done", references[free]: "Done",
        references[claimed]: "Refused: Another analyst has claimed this report; ask them or a "
                             "supervisor.",
    }
    assert "Dismiss (Not trafficking or exploitation): 2 done, 1 refused" in body
    for report_id in (mine, free):
        stored = _stored(app, report_id)
        assert stored.state == "dismissed" and stored.dismiss_reason_code == "not_trafficking"
    assert _stored(app, claimed).state == "in_review"
    assert _stored(app, untouched).state == "new"
    # The queue is drawn again with its filters (the action URL carried them).
    [sent_on] = response.history
    assert sent_on.status_code == 303
    assert response.request.args.getlist("state") == ["new", "in_review"]
    assert 'action="/triage/reports/bulk?state=new&amp;state=in_review"' in body


def _audit_events(app) -> int:
    with app.app_context():
        return db.session.scalar(text("SELECT count(*) FROM audit_events"))


def test_a_reload_shows_the_results_again_and_sends_nothing(app, analyst):
    one, two = _reports(app, {}, {})
    response = _post(analyst, {"ids": [str(one), str(two)], "action": "dismiss",
                               "reason_code": "spam"}, "?sort=age", follow_redirects=False)
    assert response.status_code == 303
    page = urlsplit(response.location)
    assert page.path == "/triage/reports"
    assert parse_qs(page.query)["sort"] == ["age"]
    events = _audit_events(app)
    first = analyst.get(response.location).get_data(as_text=True)
    again = analyst.get(response.location).get_data(as_text=True)  # a reload
    assert _results(first) == _results(again) and set(_results(again).values()) == {"Done"}
    assert "Dismiss (Spam, a test or a prank): 2 done" in again
    assert _audit_events(app) == events
    # No link on the page (other pages, filters, the bulk form's action) carries the token on.
    assert "results=" not in again
    # Another analyst opening the same URL sees no results, only that there are none to show.
    _user(app, "bob@example.org", name="Bob")
    bob = app.test_client()
    sign_in(bob, email="bob@example.org")
    theirs = bob.get(response.location).get_data(as_text=True)
    assert 'id="bulk-results"' not in theirs and "no longer kept" in theirs


def test_results_are_kept_for_a_quarter_of_an_hour(app, analyst, redis_conn):
    (one,) = _reports(app, {})
    response = _post(analyst, {"ids": str(one), "action": "dismiss", "reason_code": "spam"},
                     follow_redirects=False)
    token = parse_qs(urlsplit(response.location).query)["results"][0]
    [key] = redis_conn.keys("*bulk-results*")
    assert token in key.decode()
    assert RESULTS_KEPT_S - 5 <= redis_conn.ttl(key) <= RESULTS_KEPT_S == 15 * 60
    redis_conn.delete(key)  # what the expiry does
    body = analyst.get(response.location).get_data(as_text=True)
    assert 'id="bulk-results"' not in body and "no longer kept" in body


def test_with_redis_down_the_results_are_shown_at_once(make_app):
    app = make_app(REDIS_URL=DEAD_REDIS_URL)
    _user(app, "ana@example.org")
    client = app.test_client()
    assert sign_in(client).status_code == 302
    (one,) = _reports(app, {})
    response = _post(client, {"ids": str(one), "action": "dismiss", "reason_code": "spam"},
                     follow_redirects=False)
    assert response.status_code == 200
    assert list(_results(response.get_data(as_text=True)).values()) == ["Done"]
    assert _stored(app, one).state == "dismissed"


def test_a_move_that_is_not_allowed_is_named(app, analyst):
    (closed,) = _reports(app, {"state": "closed"})
    body = _post(analyst, {"ids": str(closed), "action": "dismiss",
                           "reason_code": "spam"}).get_data(as_text=True)
    assert list(_results(body).values()) == [
        "Refused: Not allowed: a report that is closed can only move to in review."]


def test_bulk_tags_add_taxonomy_and_free_tags(app, analyst):
    one, two = _reports(app, {"tags": ["sector:car_wash"]}, {})
    response = _post(analyst, {"ids": [str(one), str(two)], "action": "tag",
                               "tag_code": "sector:car_wash",
                               "other_tags": "control:debt_bondage, white van"})
    assert response.status_code == 200
    assert set(_results(response.get_data(as_text=True)).values()) == {"Done"}
    assert _stored(app, one).tags == ["sector:car_wash", "control:debt_bondage", "free:white van"]
    assert _stored(app, two).tags == ["sector:car_wash", "control:debt_bondage", "free:white van"]


def test_an_unknown_tag_is_refused_for_each_row_and_changes_nothing(app, analyst):
    (one,) = _reports(app, {})
    body = _post(analyst, {"ids": str(one), "action": "tag",
                           "other_tags": "sector:no_such_code"}).get_data(as_text=True)
    assert "unknown tag" in list(_results(body).values())[0]
    assert _stored(app, one).tags == []


def test_bulk_duplicate_resolves_the_typed_reference(app, analyst):
    original, copy = _reports(app, {}, {})
    reference = _stored(app, original).reference
    body = _post(analyst, {"ids": str(copy), "action": "duplicate",
                           "duplicate_of": f" {reference.lower()} "}).get_data(as_text=True)
    assert f"Mark as duplicate of {reference}: 1 done" in body
    stored = _stored(app, copy)
    assert stored.state == "duplicate" and stored.duplicate_of_id == original


def test_bulk_duplicate_of_an_unknown_reference_changes_nothing(app, analyst):
    (copy,) = _reports(app, {})
    response = _post(analyst, {"ids": str(copy), "action": "duplicate",
                               "duplicate_of": "R-0000-999999"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert '<a href="#duplicate_of">No report has the reference R-0000-999999.</a>' in body
    assert f'value="{copy}" id="pick-{copy}" checked' in body  # the ticks are kept
    assert _stored(app, copy).state == "new"


def test_assign_by_an_analyst_is_refused_with_a_message(app, analyst):
    bob = _user(app, "bob@example.org", name="Bob")
    (report_id,) = _reports(app, {})
    body = analyst.get("/triage/reports").get_data(as_text=True)
    assert "Assign to someone" not in body  # not offered to analysts
    response = _post(analyst, {"ids": str(report_id), "action": "assign", "user_id": str(bob)})
    assert response.status_code == 403
    assert "This needs the supervisor role. Nothing was changed." in response.get_data(
        as_text=True)
    assert _stored(app, report_id).assignee_id is None


def test_a_supervisor_assigns_in_bulk(app, client):
    _user(app, "sue@example.org", "supervisor", name="Sue")
    bob = _user(app, "bob@example.org", name="Bob")
    one, two = _reports(app, {}, {"state": "dismissed"})
    sign_in(client, email="sue@example.org")
    assert "Bob (analyst)" in client.get("/triage/reports").get_data(as_text=True)
    body = _post(client, {"ids": [str(one), str(two)], "action": "assign",
                          "user_id": str(bob)}).get_data(as_text=True)
    assert "Assign to Bob: 1 done, 1 refused" in body
    assert _stored(app, one).assignee_id == bob and _stored(app, one).state == "in_review"
    assert "cannot be claimed or assigned" in _results(body)[_stored(app, two).reference]


@pytest.mark.parametrize("data, error", [
    ({"action": "dismiss", "reason_code": "spam"},
     '<a href="#ids">Select at least one report in the table.</a>'),
    ({"ids": "{id}", "action": "dismiss"},
     '<a href="#reason_code">Choose why the reports are dismissed.</a>'),
    ({"ids": "{id}", "action": "dismiss", "reason_code": "other", "reason": "  "},
     '<a href="#reason">Explain why the reports are dismissed.</a>'),
    ({"ids": "{id}"}, '<a href="#action">Choose what to do with the selected reports.</a>'),
    ({"ids": "{id}", "action": "tag"},
     '<a href="#other_tags">Choose a tag from the list or type one.</a>'),
    ({"ids": "{id}", "action": "duplicate"},
     '<a href="#duplicate_of">Type the reference of the report they repeat.</a>'),
    ({"ids": "not-an-id", "action": "dismiss", "reason_code": "spam"},
     "The selection is not valid"),
])
def test_bad_input_changes_nothing_and_says_what_to_fix(app, analyst, data, error):
    (report_id,) = _reports(app, {})
    version = _stored(app, report_id).version
    data = {k: v.replace("{id}", str(report_id)) for k, v in data.items()}
    response = _post(analyst, data)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "There is a problem" in body and error in body
    assert 'id="bulk" open' in body
    stored = _stored(app, report_id)
    assert stored.state == "new" and stored.version == version


def test_priority_reasons_are_in_the_row_in_plain_words(app, analyst):
    _reports(app, {"priority": 75, "priority_reasons": ["minors", "ongoing"]},
             {"priority": 10, "priority_reasons": []})
    body = analyst.get("/triage/reports").get_data(as_text=True)
    assert "Why 75:" in body
    assert "Children may be involved (+35)" in body and "Still going on (+20)" in body
    assert "Nothing raised it above the base priority" in body
    assert re.search(r'<span class="why" tabindex="0">\s*<span class="priority high">75', body)


def test_a_supervisor_s_override_is_the_priority_the_row_shows_and_sorts_by(app, analyst):
    _reports(app, {"priority": 20, "priority_override": 90, "priority_reasons": []},
             {"priority": 60, "priority_reasons": ["ongoing"]})
    body = analyst.get("/triage/reports").get_data(as_text=True)
    assert "Why 90:" in body and "Set by a supervisor (computed: 20)" in body
    # Sorted by the override: the overridden row comes first, shown with its badge.
    assert body.index("Why 90:") < body.index("Why 60:")
    assert re.search(r'<span class="why" tabindex="0">\s*<span class="priority high">90', body)


def test_every_priority_reason_and_dismiss_reason_has_a_label():
    assert set(REASON_LABELS) == set(POINTS)
    assert reason_label("photos") == "Has photos (+5)"
    assert reason_label("from_an_older_rule") == "from_an_older_rule"
    assert tuple(DISMISS_REASON_LABELS) == DISMISS_REASON_CODES  # the order the forms offer


def test_a_typed_reference_finds_its_report(app):
    (report_id,) = _reports(app, {})
    with app.app_context():
        actor = accounts.create_user("finder@example.org", "analyst", "correct horse battery")
        reference = db.session.get(Report, report_id).reference
        assert find_report_id(actor, reference) == report_id
        assert find_report_id(actor, f"  {reference.lower()}") == report_id
        for wrong in ("R-0000-000000", "", "   "):
            with pytest.raises(ValidationError):
                find_report_id(actor, wrong)


def test_free_words_become_free_tags():
    form = BulkForm.__new__(BulkForm)  # only the parsing, without a request
    form.tag_code = type("F", (), {"data": "sector:car_wash"})()
    form.other_tags = type("F", (), {"data": " free:a b , Car wash,sector:car_wash,, x:y "})()
    assert BulkForm.tags(form) == ["sector:car_wash", "free:a b", "free:Car wash", "x:y"]


# -- areas -------------------------------------------------------------------------------------


def _import_boroughs(app, testdata) -> None:
    with app.app_context(), unit_of_work(), (testdata / BOROUGHS).open("rb") as source:
        import_areas(None, source, code_property="LAD13CD", name_property="LAD13NM")


def test_area_outlines_need_sign_in(app, client):
    response = client.get("/triage/areas.geojson")
    assert response.status_code == 302 and "/triage/sign-in" in response.location


def test_area_outlines_are_simplified_geojson(app, analyst, testdata):
    _import_boroughs(app, testdata)
    response = analyst.get("/triage/areas.geojson")
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    assert response.headers["Cache-Control"] == "no-store"
    outlines = response.get_json()
    assert outlines["type"] == "FeatureCollection"
    assert [f["properties"] for f in outlines["features"]] == [
        {"code": "E09000013", "name": "Hammersmith and Fulham"},
        {"code": "E09000020", "name": "Kensington and Chelsea"},
        {"code": "E09000033", "name": "Westminster"},
    ]
    geometry = outlines["features"][0]["geometry"]
    assert geometry["type"] in ("Polygon", "MultiPolygon")
    ring = geometry["coordinates"][0] if geometry["type"] == "Polygon" \
        else geometry["coordinates"][0][0]
    source = __import__("json").loads((testdata / BOROUGHS).read_text())
    original = source["features"][0]["geometry"]["coordinates"][0]
    assert 10 < len(ring) < len(original)  # simplified, still an outline
    assert all(len(str(v).split(".")[1]) <= 5 for v in ring[0])

    by_code = analyst.get("/triage/areas.geojson?code=E09000033&code=E09000013").get_json()
    assert [f["properties"]["code"] for f in by_code["features"]] == ["E09000013", "E09000033"]
    # Around Trafalgar Square: Westminster only.
    east = analyst.get("/triage/areas.geojson?bbox=-0.135,51.505,-0.125,51.515").get_json()
    assert [f["properties"]["code"] for f in east["features"]] == ["E09000033"]
    assert analyst.get("/triage/areas.geojson?bbox=1,2,3").status_code == 400


def test_the_area_filter_offers_the_imported_areas(app, analyst, testdata):
    _import_boroughs(app, testdata)
    _reports(app, {"area_codes": ["E09000033"], "description": "in westminster"},
             {"area_codes": ["E09000013"], "description": "in hammersmith"})
    body = analyst.get("/triage/reports?area=E09000033").get_data(as_text=True)
    assert '<option selected value="E09000033">Westminster (E09000033)</option>' in body
    assert "in westminster" in body and "in hammersmith" not in body
    # A code from an old bookmark still filters (and is offered as it is).
    body = analyst.get("/triage/reports?area=E0000GONE").get_data(as_text=True)
    assert '<option selected value="E0000GONE">E0000GONE</option>' in body
    assert "No reports match these filters." in body


def test_the_report_page_map_names_the_reports_areas(app, analyst, testdata):
    _import_boroughs(app, testdata)
    (report_id,) = _reports(app, {"area_codes": ["E09000013"]})
    body = analyst.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert "data-areas='[\"E09000013\"]'" in body
    assert 'data-areas-url="/triage/areas.geojson"' in body

