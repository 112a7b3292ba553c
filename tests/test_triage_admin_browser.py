"""The admin pages in a real browser (Debian's Chromium, Playwright) against a live gunicorn:
accounts, areas with their map, the taxonomy and the audit trail.

A TOTP code is accepted once, so each test signs in as its own admin.
"""

from __future__ import annotations

import json

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import delete

from stopapp.accounts import services as accounts
from stopapp.audit.services import record
from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.review.models import TagCode
from tests.browser import PASSWORD, Site, live_site, shot, sign_in
from tests.conftest import TESTDATA
from tests.triage_helpers import new_report, seed_tags

GEO = TESTDATA / "geo" / "london_hf_kc_westminster.geojson"
BOW_TIE = {"type": "Polygon", "coordinates": [[[-0.30, 51.40], [-0.29, 51.41], [-0.29, 51.40],
                                               [-0.30, 51.41], [-0.30, 51.40]]]}
ADMINS = ("users", "areas", "taxonomy", "audit", "nojs")
NEW_CODE = "zz_admin_browser_hand_car_wash"

# Failed sign-ins per client live in Redis (flushed by redis_conn): each test starts with none.
pytestmark = pytest.mark.usefixtures("redis_conn")


def _seed(app, site: Site) -> None:
    with app.app_context(), unit_of_work():
        seed_tags()
        for name in ADMINS:
            _, uri = accounts.add_user(None, f"{name}-admin@example.org", "admin", PASSWORD,
                                       name=f"Admin {name.title()}")
            site.data[name] = pyotp.parse_uri(uri)
        ana = accounts.create_user("ana@example.org", "analyst", PASSWORD, name="Ana Analyst")
        tess = accounts.create_user("tess@example.org", "analyst", PASSWORD, name="Tess Totp")
        accounts.enrol_totp(None, tess)
        report = new_report(description="Workers sleep at the car wash.")
        site.reports["read"] = str(report.id)
        site.data["reference"] = report.reference
        record(ana, "report.read", report_id=report.id)
        record(ana, "report.tag", report_id=report.id, detail={"added": ["sector:car_wash"]})


@pytest.fixture(scope="module")
def site(migrated_database, tmp_path_factory):
    with live_site(tmp_path_factory, _seed) as site:
        yield site
        with site.app.app_context(), unit_of_work():
            db.session.execute(delete(TagCode).where(TagCode.code == NEW_CODE))


def admin_signs_in(page: Page, site: Site, name: str) -> None:
    sign_in(page, site, f"{name}-admin@example.org", code=site.data[name].now())
    expect(page.locator(".who-name")).to_contain_text(f"Admin {name.title()}")


def status(page: Page):
    return page.get_by_role("status")


def test_admin_creates_a_user_changes_their_role_and_resets_an_authenticator(page: Page,
                                                                            site: Site):
    admin_signs_in(page, site, "users")
    page.get_by_role("link", name="Admin", exact=True).click()
    page.get_by_role("navigation", name="Admin sections").get_by_role(
        "link", name="Staff accounts").click()
    page.get_by_role("link", name="Add a user").click()
    page.get_by_label("Email address").fill("nia@example.org")
    page.get_by_label("Full name").fill("Nia New")
    page.get_by_label("Initial password").fill("short")
    page.get_by_role("button", name="Add the user").click()
    expect(page.locator(".error-summary")).to_contain_text(
        "The password needs at least 12 characters.")
    expect(page.get_by_label("Full name")).to_have_value("Nia New")
    page.get_by_label("Initial password").fill("a long enough password")
    page.get_by_role("button", name="Add the user").click()
    expect(status(page)).to_contain_text("Nia New's account is created.")

    page.get_by_label("New role").select_option("supervisor")
    page.get_by_role("button", name="Change the role").click()
    expect(status(page)).to_have_text("Nia New is now a supervisor.")
    expect(page.locator("#user-role")).to_have_text("supervisor")

    page.get_by_role("link", name="All staff accounts").click()
    expect(page.locator("#users-table")).to_contain_text("nia@example.org")
    shot(page, "admin-users")

    page.get_by_role("link", name="Tess Totp").click()
    expect(page.locator("#user-totp")).to_contain_text("Set up on")
    page.get_by_role("button", name="Reset the authenticator app").click()
    expect(status(page)).to_contain_text("Tess Totp's authenticator app is removed")
    expect(page.locator("#user-totp")).to_have_text("None")

    # Promoting an analyst to admin hands over an authenticator at once.
    page.get_by_role("link", name="All staff accounts").click()
    page.get_by_role("link", name="Ana Analyst").click()
    page.get_by_label("New role").select_option("admin")
    page.get_by_role("button", name="Change the role").click()
    heading = page.get_by_role("heading", name="A new authenticator app for Ana Analyst")
    expect(heading).to_be_visible()
    expect(page.locator("img.qr")).to_be_visible()


def test_admin_uploads_areas_sees_the_refusal_then_the_list_and_map(page: Page, site: Site,
                                                                   tmp_path):
    collection = json.loads(GEO.read_text())
    collection["features"].append({"type": "Feature", "geometry": BOW_TIE,
                                   "properties": {"LAD13CD": "BOW", "LAD13NM": "Bow tie"}})
    bad = tmp_path / "with_bow_tie.geojson"
    bad.write_text(json.dumps(collection))

    admin_signs_in(page, site, "areas")
    page.goto(site("/triage/admin/areas"))
    expect(page.get_by_role("heading", name="0 areas")).to_be_visible()
    page.get_by_label("GeoJSON file").set_input_files(str(bad))
    page.get_by_label("Property holding the area code").fill("LAD13CD")
    page.get_by_label("Property holding the area name").fill("LAD13NM")
    page.get_by_role("button", name="Upload and import").click()
    report = page.locator("#validation-report")
    expect(report).to_contain_text("nothing was imported")
    expect(report).to_contain_text("feature 4 (BOW): Self-intersection")
    expect(page.get_by_label("Property holding the area code")).to_have_value("LAD13CD")

    page.get_by_label("GeoJSON file").set_input_files(str(GEO))
    page.get_by_role("button", name="Upload and import").click()
    expect(status(page)).to_have_text("Imported 3 areas (3 new; 0 replaced) from EPSG:4326.")
    table = page.locator("#areas-table")
    for name in ("Hammersmith and Fulham", "Kensington and Chelsea", "Westminster"):
        expect(table).to_contain_text(name)
    expect(page.locator("#areas-map")).to_have_attribute("data-loaded", "3")
    expect(page.locator("#areas-map path.leaflet-interactive")).to_have_count(3)
    shot(page, "admin-areas")


def test_admin_adds_relabels_and_retires_a_tag_code(page: Page, site: Site):
    admin_signs_in(page, site, "taxonomy")
    page.goto(site("/triage/admin/taxonomy"))
    expect(page.locator("#tag-sector-car_wash")).to_contain_text("car_wash")
    page.get_by_label("Dimension", exact=True).select_option("sector")
    page.get_by_label("Code", exact=True).fill(NEW_CODE)
    page.get_by_label("Label", exact=True).fill("")
    page.get_by_role("button", name="Add the code").click()
    expect(page.locator(".error-summary")).to_contain_text("Enter the label.")
    expect(page.get_by_label("Code", exact=True)).to_have_value(NEW_CODE)
    page.get_by_label("Label", exact=True).fill("Hand car wash")
    page.get_by_role("button", name="Add the code").click()
    expect(status(page)).to_have_text(f"Added sector:{NEW_CODE} (Hand car wash).")

    page.locator(f"#tag-sector-{NEW_CODE}").get_by_role("link").click()
    page.get_by_label("New label").fill("Hand car wash or valeting")
    page.get_by_role("button", name="Save the label").click()
    expect(status(page)).to_have_text(f"sector:{NEW_CODE} is now labelled Hand car wash or "
                                      "valeting.")
    expect(page.locator("#tag-label")).to_have_text("Hand car wash or valeting")
    page.get_by_role("button", name=f"Retire sector:{NEW_CODE}").click()
    expect(status(page)).to_contain_text("is retired")
    expect(page.locator("#tag-status")).to_contain_text("Retired on")
    page.get_by_role("link", name="The whole taxonomy").click()
    expect(page.locator(f"#tag-sector-{NEW_CODE}")).to_contain_text("Retired")


def test_admin_filters_the_audit_trail(page: Page, site: Site):
    admin_signs_in(page, site, "audit")
    page.goto(site("/triage/admin"))
    page.get_by_role("link", name="Audit trail").first.click()
    page.get_by_label("Report id or reference").fill(site.data["reference"])
    page.get_by_label("Who (email)").fill("ana@example.org")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("report.tag")
    expect(rows.first).to_contain_text("sector:car_wash")
    expect(page).to_have_url(f"{site.url}/triage/admin/audit?report="
                             f"{site.data['reference']}&actor_email=ana%40example.org"
                             "&action=&created_from=&created_to=")
    shot(page, "admin-audit")
    page.get_by_label("Action").fill("report.read")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)


def test_areas_are_listed_without_javascript(browser, site: Site):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        admin_signs_in(page, site, "nojs")
        page.goto(site("/triage/admin/areas"))
        expect(page.locator("#areas-map")).to_be_hidden()
        expect(page.get_by_role("heading", name="Upload areas")).to_be_visible()
    finally:
        context.close()
