"""The queue page in a real browser: bulk actions with their per-row results (with JavaScript on
and off), a priority's reasons on hover and on keyboard focus, and the map view with the areas'
outlines and a box drawn with the mouse to filter the queue.

Each test acts on its own reports of the seed (the data are shared by the module's tests).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from stopapp.accounts import services as accounts
from stopapp.areas.services import import_areas
from stopapp.db import unit_of_work
from stopapp.extensions import db
from tests.browser import PASSWORD, Site, live_site, shot, sign_in
from tests.conftest import TESTDATA
from tests.triage_helpers import new_report

# West of -0.21 (Hammersmith and Fulham) and east of -0.16 (Kensington and Chelsea,
# Westminster): a box over the west half of the map holds the first group only.
WEST = {
    "tag1": dict(description="Two girls, maybe 15, brought to the flat every evening.",
                 priority=90, priority_reasons=["minors", "ongoing", "recent_72h", "photos"],
                 exploitation_types=["sexual"], lon=-0.2245, lat=51.4930),
    "tag2": dict(description="Men sleep in the back of the car wash.", priority=55,
                 priority_reasons=["ongoing", "corroborated"], lon=-0.2330, lat=51.4960),
    "tag3": dict(description="Van collects workers at 5am from the car park.", priority=45,
                 priority_reasons=["recent_14d", "approximate_location"], lon=-0.2180,
                 lat=51.4990),
}
EAST = {
    "dis1": dict(description="Test message, please ignore.", priority=15, lon=-0.1420,
                 lat=51.4970),
    "dis2": dict(description="Testing the app again.", priority=12, lon=-0.1350, lat=51.5100),
    "claimed": dict(description="Cleaner at the hotel has no passport.", priority=40,
                    state="in_review", lon=-0.1500, lat=51.5000),
    "original": dict(description="Nail bar staff never leave the shop.", priority=35,
                     lon=-0.1450, lat=51.5130),
    "copy": dict(description="Nail bar workers seem to live in the shop.", priority=34,
                 lon=-0.1495, lat=51.5128),
    "nojs": dict(description="Boss keeps the passports of the kitchen staff.", priority=30,
                 lon=-0.1380, lat=51.5060),
    "anchor": dict(description="Flower sellers dropped off by car at every junction.",
                   priority=20, lon=-0.1300, lat=51.5120),
}

# Failed sign-ins per client live in Redis (flushed by redis_conn): each test starts with none.
pytestmark = pytest.mark.usefixtures("redis_conn")


def _seed(app, site: Site) -> None:
    with app.app_context(), unit_of_work():
        accounts.create_user("ana@example.org", "analyst", PASSWORD, name="Ana Analyst")
        bob = accounts.create_user("bob@example.org", "analyst", PASSWORD, name="Bob Busy")
        with (TESTDATA / "geo" / "london_hf_kc_westminster.geojson").open("rb") as source:
            import_areas(None, source, code_property="LAD13CD", name_property="LAD13NM")
        for name, fields in {**WEST, **EAST}.items():
            if name == "claimed":
                fields = {**fields, "assignee_id": bob.id}
            report = new_report(**fields)
            site.reports[name] = str(report.id)
            site.data[name] = report.reference
        # What the triage job does: each report carries the codes of the areas covering it.
        db.session.execute(text(
            "UPDATE reports SET area_codes = ARRAY(SELECT code FROM areas "
            "WHERE ST_Covers(areas.geom, reports.location::geometry) ORDER BY code)"
        ))


@pytest.fixture(scope="module")
def site(migrated_database, tmp_path_factory):
    with live_site(tmp_path_factory, _seed) as site:
        yield site


def _tick(page: Page, site: Site, *names: str) -> None:
    for name in names:
        page.get_by_label(f"Select {site.data[name]}", exact=True).check()


def _result(page: Page, site: Site, name: str):
    return page.locator("#bulk-results tr", has_text=site.data[name])


def test_priority_reasons_show_on_hover_and_on_keyboard_focus(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    row = page.locator("#queue-table .queue-row", has_text=site.data["tag1"])
    reasons = row.locator(".why-text")
    assert reasons.bounding_box()["width"] <= 1  # hidden until asked for
    row.locator(".priority").hover()
    expect(reasons).to_contain_text("Children may be involved (+35)")
    assert reasons.bounding_box()["width"] > 200
    expect(reasons).to_contain_text("Still going on (+20)")
    page.mouse.move(5, 5)
    expect(reasons).to_have_css("width", "1px")
    # Keyboard: Tab from the report's link reaches its priority, which shows the reasons.
    row.locator(".row-link").focus()
    page.keyboard.press("Tab")
    expect(row.locator(".why")).to_be_focused()
    assert reasons.bounding_box()["width"] > 200
    shot(page, "queue-priority-reasons")
    page.keyboard.press("Escape")
    expect(reasons).to_have_css("width", "1px")


def test_bulk_tag_three_reports(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    picks = page.locator("#queue-table input.pick")
    every = page.get_by_label("Select all on this page")
    every.check()
    expect(page.locator("#bulk-count")).to_have_text(f": {picks.count()} selected")
    every.uncheck()
    expect(page.locator("#queue-table input.pick:checked")).to_have_count(0)
    # x ticks the row selected with j/k.
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(picks.first).to_be_checked()
    assert page.evaluate("document.getElementById('select-all').indeterminate")
    page.keyboard.press("x")
    _tick(page, site, "tag1", "tag2", "tag3")
    expect(page.locator("#bulk-count")).to_have_text(": 3 selected")
    page.get_by_text("Act on the selected reports").click()
    page.get_by_label("Add tags", exact=True).check()
    page.get_by_label("Tag from the list").select_option("sector:car_wash")
    page.get_by_label("Other tags").fill("seen by the night team")
    page.get_by_role("button", name="Apply to the selected reports").click()
    results = page.locator("#bulk-results")
    expect(results).to_be_focused()
    expect(results.get_by_role("heading")).to_have_text(
        "Add sector:car_wash, free:seen by the night team: 3 done")
    for name in ("tag1", "tag2", "tag3"):
        expect(_result(page, site, name)).to_contain_text("Done")
        row = page.locator("#queue-table .queue-row", has_text=site.data[name])
        expect(row).to_contain_text("sector:car_wash")
        expect(row).to_contain_text("free:seen by the night team")


def test_bulk_dismiss_with_a_reason_shows_the_result_of_each(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    page.get_by_text("Act on the selected reports").click()
    page.get_by_label("Dismiss", exact=True).check()
    # The other actions' fields stay folded away.
    expect(page.get_by_label("Other tags")).to_be_hidden()
    page.get_by_label("Why they are dismissed").select_option("spam")
    # Nothing ticked: refused, nothing changes.
    page.get_by_role("button", name="Apply to the selected reports").click()
    expect(page.locator(".error-summary")).to_contain_text(
        "Select at least one report in the table.")
    _tick(page, site, "dis1", "dis2", "claimed")
    expect(page.get_by_label("Why they are dismissed")).to_have_value("spam")  # kept
    page.get_by_role("button", name="Apply to the selected reports").click()
    expect(page.locator("#bulk-results h2")).to_have_text(
        "Dismiss (Spam, a test or a prank): 2 done, 1 refused")
    expect(_result(page, site, "dis1")).to_contain_text("Done")
    expect(_result(page, site, "dis2")).to_contain_text("Done")
    expect(_result(page, site, "claimed")).to_contain_text(
        "Refused: Another analyst has claimed this report")
    # The queue below no longer holds the dismissed reports; the refused one stays.
    table = page.locator("#queue-table")
    expect(table).not_to_contain_text(site.data["dis1"])
    expect(table).to_contain_text(site.data["claimed"])
    shot(page, "queue-bulk-results")


def test_mark_one_as_duplicate(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    _tick(page, site, "copy")
    page.get_by_text("Act on the selected reports").click()
    page.get_by_label("Mark as duplicate of another report").check()
    page.get_by_label("Reference of the report they repeat").fill("R-0000-000000")
    page.get_by_role("button", name="Apply to the selected reports").click()
    expect(page.locator(".error-summary")).to_contain_text(
        "No report has the reference R-0000-000000.")
    field = page.get_by_label("Reference of the report they repeat")
    expect(page.get_by_label(f"Select {site.data['copy']}", exact=True)).to_be_checked()
    field.fill(site.data["original"])
    page.get_by_role("button", name="Apply to the selected reports").click()
    expect(page.locator("#bulk-results h2")).to_have_text(
        f"Mark as duplicate of {site.data['original']}: 1 done")
    page.locator("#bulk-results").get_by_role("link", name=site.data["copy"]).click()
    expect(page.locator(".report-status")).to_contain_text("Duplicate")


def test_map_shows_area_outlines_and_a_drawn_box_filters(page: Page, site: Site):
    violations = []
    page.on("console", lambda msg: violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    sign_in(page, site, "ana@example.org")
    page.goto(site("/triage/reports?view=map"))
    expect(page.locator("#map path.area-outline")).to_have_count(3)
    expect(page.locator("#map path.leaflet-interactive, #map .marker-cluster").first
           ).to_be_visible()
    shot(page, "map")

    box = page.locator("#map").bounding_box()
    draw = page.get_by_role("button", name="Draw a box")
    draw.click()
    expect(draw).to_have_attribute("aria-pressed", "true")
    # From the bottom left corner to the top, just short of the middle: the west half.
    page.mouse.move(box["x"] + 8, box["y"] + box["height"] - 8)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 - 30, box["y"] + 8, steps=8)
    page.mouse.up()
    expect(page.locator("#map path.bbox-drawn")).to_have_count(1)
    expect(draw).to_have_attribute("aria-pressed", "false")  # one box per press
    page.get_by_role("button", name="Show only reports in this box").click()
    expect(page).to_have_url(re.compile(r"view=map&bbox=-0\.\d+%2C51\.\d+"))
    west, south, east, north = map(float, parse_qs(urlsplit(page.url).query)["bbox"][0]
                                   .split(","))
    assert west < -0.2330 and -0.21 < east < -0.16 and south < 51.493 and north > 51.499
    expect(page.get_by_text("Only reports inside an area of the map.")).to_be_visible()
    links = page.locator("#queue-table .row-link")
    expect(links).to_have_count(3)
    assert sorted(links.all_inner_texts()) == sorted(site.data[n] for n in WEST)
    expect(page.locator("#map path.bbox-current")).to_have_count(1)

    # The report page's map outlines the report's own area only.
    page.goto(site(f"/triage/reports/{site.reports['tag1']}"))
    expect(page.locator("#map path.area-outline")).to_have_count(1)
    assert violations == []


def test_a_bulk_action_with_javascript_off(browser, site: Site):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, site, "ana@example.org")
        expect(page.locator("#select-all")).to_be_hidden()  # needs the script
        page.get_by_label(f"Select {site.data['nojs']}", exact=True).check()
        page.get_by_text("Act on the selected reports").click()
        page.get_by_label("Dismiss", exact=True).check()
        page.get_by_label("Why they are dismissed").select_option("other")
        page.get_by_role("button", name="Apply to the selected reports").click()
        expect(page.locator(".error-summary")).to_contain_text(
            "Explain why the reports are dismissed.")
        page.get_by_label("Explain the dismissal").fill("Already with the police.")
        page.get_by_role("button", name="Apply to the selected reports").click()
        expect(page.locator("#bulk-results h2")).to_have_text(
            "Dismiss (Another reason): 1 done")
        expect(page.locator("#queue-table")).not_to_contain_text(site.data["nojs"])
    finally:
        context.close()
