"""The report page's actions in a real browser: Debian's Chromium driven by Playwright against a
live gunicorn on the test database and Redis, with data committed for real (truncated after).

An analyst opens a report (map, photo), claims it, tags it, writes a note and replies (and the
reply reaches the reporter's status endpoint), dismisses another, marks one as a duplicate, and
sees who changed what when a supervisor in another browser changed the report first, and
forwards one to a suggested authority. One pass does the day's work with JavaScript off.

Screenshots: report.png, report-conflict.png and report-forward.png (see tests/browser.py for
where they land).
"""

from __future__ import annotations

import io
import uuid

import pytest
from playwright.sync_api import Page, expect

from stopapp.accounts import services as accounts
from stopapp.db import unit_of_work
from stopapp.media import services as media
from stopapp.security import receipt_hash
from tests.browser import PASSWORD, Site, live_site, shot, sign_in
from tests.conftest import TESTDATA
from tests.forwarding.conftest import HF, WESTMINSTER, Scene, load_london_areas, make_staff
from tests.triage_helpers import new_report, pretend_key, seed_tags
from workers import jobs

RECEIPT = "K7QF-2MZD-9XWP-4TNA-HV3C"
OTHER_RECEIPT = "M3RT-8KPW-2HXN-5VQA-JD7C"

# Failed sign-ins per client live in Redis (flushed by redis_conn): each test starts with none.
pytestmark = pytest.mark.usefixtures("redis_conn")


def _seed(app, site: Site) -> None:
    with app.app_context():
        with unit_of_work():
            seed_tags()
            accounts.create_user("ana@example.org", "analyst", PASSWORD, name="Ana Analyst")
            accounts.create_user("bo@example.org", "analyst", PASSWORD, name="Bo Analyst")
            accounts.create_user("sam@example.org", "supervisor", PASSWORD,
                                 name="Sam Supervisor")
            reports = {}
            for name, fields in {
                "main": dict(description="Men sleep in the back room of the car wash and are "
                                         "driven away in a van at 5am.", priority=82,
                             location_accuracy_m=60.0, location_source="gps",
                             place="Car wash, King Street", people={"victims": 6}),
                "spam": dict(description="test test test", priority=5, lon=-0.2100,
                             lat=51.4950),
                "original": dict(description="Cleaner at the hotel has no passport.",
                                 priority=40, lon=-0.1420, lat=51.4970),
                "repeat": dict(description="The hotel cleaner's boss keeps her passport.",
                               priority=40, lon=-0.1421, lat=51.4971),
                "contested": dict(description="Girls brought to the flat above the nail bar.",
                                  priority=88, exploitation_types=["sexual"], lon=-0.1870,
                                  lat=51.5010),
                "nojs": dict(description="Workers at the farm sleep in a shipping container.",
                             priority=60, lon=-0.3000, lat=51.4800),
                "forward": dict(description="Six men live above the hand car wash on King "
                                            "Street; a minibus takes them away at 5am.",
                                priority=75),
            }.items():
                reports[name] = report = new_report(**fields)
                site.reports[name] = str(report.id)
                site.data[f"{name}-reference"] = report.reference
            # Known receipts, so that the tests can read what the reporter sees.
            reports["main"].receipt_hash = receipt_hash(RECEIPT)
            reports["nojs"].receipt_hash = receipt_hash(OTHER_RECEIPT)
        # A real photo, processed by the real job into the media root the live site serves.
        with unit_of_work():
            photo = TESTDATA / "photos" / "orientation_6.jpg"
            accepted = media.accept_photo(uuid.UUID(site.reports["main"]), RECEIPT, uuid.uuid4(),
                                          lambda: io.BytesIO(photo.read_bytes()))
            photo_id = str(accepted.photo.id)
        assert jobs.process_photo(photo_id) != "nothing to do"
        site.data["photo"] = photo_id
        # Authorities as the forwarding tests make them: the "forward" report is in H&F.
        with unit_of_work():
            load_london_areas()
    scene = Scene(app, make_staff(app, "admin"), make_staff(app, "analyst"))
    scene.authority("H&F Police", ["police@example.org"], [HF], exploitation_types=["labour"])
    council = scene.authority("H&F Council", ["council@example.org"], [HF])
    with app.app_context(), unit_of_work():
        pretend_key(council)
    scene.authority("Modern Slavery Unit", ["msu@example.org"], [HF], encrypted_only=True)
    scene.authority("Westminster Police", ["westminster@example.org"], [WESTMINSTER])


@pytest.fixture(scope="module")
def site(migrated_database, tmp_path_factory):
    with live_site(tmp_path_factory, _seed) as site:
        yield site


def _open(page: Page, site: Site, name: str) -> None:
    page.goto(site(f"/triage/reports/{site.reports[name]}"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(site.data[f"{name}-reference"])


def _status(page: Page) -> None:
    return page.get_by_role("status")


def test_analyst_claims_tags_notes_and_replies(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    _open(page, site, "main")
    expect(page.locator("#map .leaflet-interactive").first).to_be_visible()
    thumb = page.get_by_alt_text("Photo 1 (opens the full size)")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.get_by_role("link", name="Photo 1 (opens the full size)").get_attribute(
        "href") == f"/triage/photos/{site.data['photo']}/display"

    page.get_by_role("button", name="Claim it").click()
    expect(_status(page)).to_have_text("You have claimed this report.")
    expect(page.locator("#actions")).to_contain_text("You have claimed this report.")

    page.get_by_text("Change the tags").click()
    search = page.get_by_label("Find a tag")
    search.fill("car wa")
    expect(page.get_by_label("Hand car washes and valeting")).to_be_visible()
    expect(page.get_by_label("Debt bondage")).to_be_hidden()
    expect(page.locator('.tag-group[data-dimension="control"]')).to_be_hidden()
    page.get_by_label("Hand car washes and valeting").check()
    search.fill("debt")
    page.get_by_label("Debt bondage").check()
    search.fill("")
    page.get_by_label("Free tags").fill("white van, 5am pickups")
    page.get_by_role("button", name="Save the tags").click()
    expect(_status(page)).to_have_text("The tags are saved.")
    tags = page.locator("#current-tags")
    for label in ("Hand car washes and valeting", "Debt bondage", "white van", "5am pickups"):
        expect(tags).to_contain_text(label)

    page.get_by_label("New private note").fill("Council licensing team knows the site.")
    page.get_by_role("button", name="Save the note").click()
    expect(_status(page)).to_have_text("Your note is saved.")
    expect(page.get_by_text("Council licensing team knows the site.")).to_be_visible()

    page.get_by_label("Reply to the reporter").fill("Thank you. Which days do you see the van?")
    page.get_by_role("button", name="Send the reply").click()
    expect(_status(page)).to_contain_text("Your reply is sent")
    status = page.request.get(site(f"/api/v1/reports/{site.reports['main']}/status"),
                              headers={"X-Report-Receipt": RECEIPT})
    assert status.status == 200
    assert [(m["from"], m["body"]) for m in status.json()["messages"]] == [
        ("analyst", "Thank you. Which days do you see the van?")]
    expect(page.locator("#history-title ~ ol")).to_contain_text("Ana Analyst claimed it")
    shot(page, "report")


def test_analyst_dismisses_a_report_with_a_reason(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    _open(page, site, "spam")
    page.get_by_text("Dismiss it", exact=True).click()
    page.get_by_role("button", name="Dismiss the report").click()
    expect(page.locator(".error-summary")).to_contain_text("Choose why the report is dismissed.")
    page.get_by_label("Spam, a test or a prank").check()
    page.get_by_role("button", name="Dismiss the report").click()
    expect(_status(page)).to_have_text("The report is dismissed.")
    expect(page.locator(".report-status .state")).to_have_text("Dismissed")
    expect(page.locator("#history-title ~ ol")).to_contain_text(
        "Ana Analyst moved it from new to dismissed (Spam, a test or a prank)")


def test_analyst_marks_a_report_as_a_duplicate_by_its_reference(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    _open(page, site, "repeat")
    page.get_by_text("Mark as a duplicate", exact=True).first.click()
    field = page.get_by_label("Reference of the report it repeats")
    field.fill("R-0000-000000")
    page.get_by_role("button", name="Mark as a duplicate").click()
    expect(page.locator(".error-summary")).to_contain_text("No report has the reference")
    expect(field).to_have_value("R-0000-000000")
    field.fill(site.data["original-reference"])
    page.get_by_role("button", name="Mark as a duplicate").click()
    expect(_status(page)).to_have_text("The report is marked as a duplicate.")
    expect(page.locator(".report-status .state")).to_have_text("Duplicate")


def test_second_to_save_sees_who_changed_what_and_keeps_their_text(page: Page, browser,
                                                                    site: Site):
    sign_in(page, site, "ana@example.org")
    _open(page, site, "contested")
    page.get_by_text("Dismiss it", exact=True).click()
    page.get_by_label("Another reason (explain below)").check()
    reason = "The reporter wrote again: it was a misunderstanding."
    page.get_by_label("Explain the reason").fill(reason)

    # Meanwhile a supervisor, in another browser, tags and claims the same report.
    other = browser.new_context()
    try:
        sam = other.new_page()
        sign_in(sam, site, "sam@example.org")
        _open(sam, site, "contested")
        sam.get_by_text("Change the tags").click()
        sam.get_by_label("Nail bars, beauty salons").check()
        sam.get_by_role("button", name="Save the tags").click()
        expect(_status(sam)).to_have_text("The tags are saved.")
        sam.get_by_role("button", name="Claim it").click()
        expect(_status(sam)).to_have_text("You have claimed this report.")
    finally:
        other.close()

    page.get_by_role("button", name="Dismiss the report").click()
    conflict = page.locator("#conflict")
    expect(conflict).to_contain_text("Someone else changed this report first")
    expect(conflict).to_contain_text(
        "Sam Supervisor changed the tags: added sector:nail_bar_beauty")
    expect(conflict).to_contain_text("Sam Supervisor claimed it")
    expect(page.get_by_label("Explain the reason")).to_have_value(reason)
    expect(page.get_by_label("Another reason (explain below)")).to_be_checked()
    expect(page.locator(".report-status .state")).to_have_text("In review")
    shot(page, "report-conflict")
    # Having looked, the analyst can still send it (a supervisor holds the claim, so the
    # service now refuses for that reason, and says so).
    page.get_by_role("button", name="Dismiss the report").click()
    expect(page.locator(".error-summary")).to_contain_text("Another analyst has claimed")
    expect(page.get_by_label("Explain the reason")).to_have_value(reason)


def test_a_day_s_work_with_javascript_off(browser, site: Site):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, site, "bo@example.org")
        _open(page, site, "nojs")
        page.get_by_role("button", name="Claim it").click()
        expect(_status(page)).to_have_text("You have claimed this report.")

        page.get_by_text("Change the tags").click()
        expect(page.get_by_label("Find a tag")).to_be_hidden()  # no search without scripts
        page.get_by_label("Debt bondage").check()
        page.get_by_label("Free tags").fill("shipping container")
        page.get_by_role("button", name="Save the tags").click()
        expect(_status(page)).to_have_text("The tags are saved.")
        expect(page.locator("#current-tags")).to_contain_text("Debt bondage")

        page.get_by_label("New private note").fill("Farm is on the county list.")
        page.get_by_role("button", name="Save the note").click()
        expect(page.get_by_text("Farm is on the county list.")).to_be_visible()

        page.get_by_label("Reply to the reporter").fill("Is anyone there now?")
        page.get_by_role("button", name="Send the reply").click()
        expect(_status(page)).to_contain_text("Your reply is sent")
        status = page.request.get(site(f"/api/v1/reports/{site.reports['nojs']}/status"),
                                  headers={"X-Report-Receipt": OTHER_RECEIPT})
        assert status.json()["messages"][-1]["body"] == "Is anyone there now?"

        page.get_by_text("Dismiss it", exact=True).click()
        page.get_by_label("Outside our area or remit").check()
        page.get_by_role("button", name="Dismiss the report").click()
        expect(_status(page)).to_have_text("The report is dismissed.")
        expect(page.locator(".report-status .state")).to_have_text("Dismissed")
    finally:
        context.close()


def test_report_page_fits_a_tablet(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    page.set_viewport_size({"width": 768, "height": 1024})
    _open(page, site, "original")
    # Nothing sticks out sideways: the page scrolls only down.
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    actions = page.locator("#actions").bounding_box()
    description = page.locator("#description").bounding_box()
    assert actions["y"] < description["y"]  # the actions come first, above the report


def test_analyst_forwards_a_report_to_a_suggested_authority(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    _open(page, site, "forward")
    section = page.locator("#forward")
    expect(section).to_contain_text("Suggested for this report: H&F Council, H&F Police")
    page.get_by_text("Forward it", exact=True).click()
    expect(section).to_contain_text("Covers Hammersmith and Fulham. Handles labour exploitation.")
    expect(section).to_contain_text("Mail to it is PGP-encrypted.")
    expect(page.get_by_label("Modern Slavery Unit")).to_be_disabled()
    expect(page.get_by_label("Include the reporter's contact details")).to_be_disabled()
    page.get_by_label("H&F Police").check()
    page.get_by_label("About 100 m").check()
    note = page.get_by_label("Cover note (optional)")
    note.fill("The reporter has seen this three times.")
    note.blur()  # the focus ring would stick out of the picture
    shot(page, "report-forward", section)
    page.get_by_role("button", name="Forward the report").click()
    expect(_status(page)).to_contain_text("The report is forwarded")
    expect(page.locator(".report-status .state")).to_have_text("Actioned")
    expect(page.locator("#history-title ~ ol")).to_contain_text(
        "Ana Analyst forwarded it to H&F Police, with the location to about 100 m")
    # An actioned report can go to more authorities; choosing none is explained.
    page.get_by_text("Forward it", exact=True).click()
    page.get_by_role("button", name="Forward the report").click()
    expect(page.locator(".error-summary")).to_contain_text(
        "Choose at least one authority to forward it to.")
