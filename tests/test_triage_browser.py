"""The web queue in a real browser: Debian's Chromium driven by Playwright against a live gunicorn
on the test database and Redis, with data committed for real (truncated after the module).

Screenshots land in var/screenshots/ (`make screenshots`: in docs/screenshots/ for the README).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import Page, expect

from stopapp.accounts import services as accounts
from stopapp.db import unit_of_work
from stopapp.reports.models import utcnow
from tests.browser import PASSWORD, XSS, Site, live_site, shot, sign_in
from tests.triage_helpers import new_report

# Failed sign-ins per client live in Redis (flushed by redis_conn): each test starts with none.
pytestmark = pytest.mark.usefixtures("redis_conn")


def _seed(app, site: Site) -> None:
    with app.app_context(), unit_of_work():
        accounts.create_user("ana@example.org", "analyst", PASSWORD, name="Ana Analyst")
        accounts.create_user("tom@example.org", "analyst", PASSWORD, name="Tom Token")
        accounts.create_user("lock@example.org", "analyst", PASSWORD, name="Lee Locked")
        _, uri = accounts.add_user(None, "root@example.org", "admin", PASSWORD, name="Ada Admin")
        site.admin_totp = pyotp.parse_uri(uri)
        now = utcnow()
        for name, fields in {
            "xss": dict(description=XSS, place="<b>Unit 4</b>", priority=95, lon=-0.2245,
                        lat=51.4930, location_accuracy_m=40.0, location_source="gps",
                        tags=["sector:car_wash"], people={"victims": 3, "minors": False}),
            "urgent": dict(description="Two girls, maybe 15, brought to the flat above the nail "
                                       "bar every evening by an older man.", priority=88,
                           exploitation_types=["sexual"], lon=-0.1870, lat=51.5010,
                           place="Nail bar, Earls Court Road"),
            "van": dict(description="Men collected at 5am by a white van, they say they owe "
                                    "money for the trip.", priority=55, lon=-0.2050,
                        lat=51.4990, created_at=now - timedelta(days=2)),
            "old": dict(description="Cleaner at the hotel has no passport, boss keeps it.",
                        priority=30, exploitation_types=["domestic_servitude"], lon=-0.1420,
                        lat=51.4970, created_at=now - timedelta(days=6)),
            "claimed": dict(description="Car wash workers sleep in the back room.",
                            state="in_review", priority=62, lon=-0.2300, lat=51.4900),
        }.items():
            site.reports[name] = str(new_report(**fields).id)


@pytest.fixture(scope="module")
def site(migrated_database, tmp_path_factory):
    with live_site(tmp_path_factory, _seed) as site:
        yield site


def test_sign_in_then_out(page: Page, site: Site):
    page.goto(site("/triage/reports?state=new"))
    expect(page).to_have_url(re.compile(r"/triage/sign-in\?next="))
    shot(page, "sign-in")
    page.get_by_label("Email address").fill("ana@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(site("/triage/reports?state=new"))
    expect(page.locator(".who-name")).to_contain_text("Ana Analyst")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    page.goto(site("/triage/reports"))
    expect(page).to_have_url(re.compile(r"/triage/sign-in"))


def _failures(site: Site, email: str, count: int, ago: timedelta) -> None:
    with site.app.app_context(), unit_of_work():
        user = accounts.get_user(email)
        user.failed_logins = count
        user.last_failed_login_at = utcnow() - ago


def test_wrong_password_then_wait_then_lockout(page: Page, site: Site):
    for _ in range(3):
        sign_in(page, site, "lock@example.org", "not the password")
        expect(page.locator(".error-summary")).to_contain_text(
            "The email, password or code is not right.")
    # The real delays double from 1 s (after the third failure): a browser is too slow to hit
    # the first second reliably, and waiting out the later ones would take minutes. So the
    # account's count is moved on in the database, as further failures would have left it.
    _failures(site, "lock@example.org", 7, timedelta(0))
    sign_in(page, site, "lock@example.org")  # the right password, but too soon
    expect(page.locator(".error-summary")).to_contain_text(
        re.compile(r"Wait \d+ seconds?, then try again\. You can try again after"))
    _failures(site, "lock@example.org", 9, timedelta(hours=1))
    sign_in(page, site, "lock@example.org", "still not the password")  # the tenth: locked
    sign_in(page, site, "lock@example.org")  # the right password, but locked
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("signing in is blocked for 15 more minutes")
    expect(summary).to_contain_text(re.compile(r"try again after \d\d:\d\d:\d\d UTC"))
    shot(page, "sign-in-locked")


def test_admin_signs_in_with_a_code_and_sees_admin_pages(page: Page, site: Site):
    sign_in(page, site, "root@example.org")
    expect(page.locator("#code-error")).to_contain_text(
        "Enter the 6-digit code from your authenticator app.")
    sign_in(page, site, "root@example.org", code=site.admin_totp.now())
    expect(page.locator(".who-name")).to_contain_text("Ada Admin")
    page.get_by_role("link", name="Admin").click()
    page.get_by_role("navigation", name="Admin sections").get_by_role(
        "link", name="Staff accounts").click()
    expect(page.get_by_role("heading", name="Staff accounts")).to_be_visible()
    expect(page.get_by_role("cell", name="ana@example.org")).to_be_visible()


def test_analyst_gets_403_on_admin_pages(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    response = page.goto(site("/triage/admin"))
    assert response.status == 403
    expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()


def test_report_text_is_shown_as_text_and_runs_nothing(page: Page, site: Site):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, site, "ana@example.org")
    expect(page.locator("#queue-table")).to_contain_text("<script>alert(1)</script>")
    page.goto(site(f"/triage/reports/{site.reports['xss']}"))
    expect(page.locator("#description")).to_have_text(XSS)
    expect(page.get_by_text("<b>Unit 4</b>")).to_be_visible()
    assert page.locator("main img[src=x]").count() == 0
    expect(page.locator("#map .leaflet-interactive").first).to_be_visible()
    assert dialogs == []


def test_queue_urgent_first_map_and_keyboard(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    references = page.locator("#queue-table .row-link")
    expect(references).to_have_count(5)
    rows = page.locator("#queue-table tbody tr")
    expect(rows.nth(0)).to_contain_text("<script>")  # priority 95
    expect(rows.nth(1)).to_contain_text("Two girls")  # 88
    expect(page.locator(".state-counts")).to_contain_text("New 4")
    shot(page, "queue")
    page.set_viewport_size({"width": 768, "height": 1024})  # a tablet held upright
    shot(page, "queue-tablet")
    page.set_viewport_size({"width": 1280, "height": 860})
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile("selected"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(site(f"/triage/reports/{site.reports['urgent']}"))
    page.goto(site("/triage/reports?view=map"))
    expect(page.locator("#map .leaflet-marker-pane > *, #map path.leaflet-interactive").first
           ).to_be_visible()
    # Every report is on the map: alone as a circle, or counted in a cluster.
    shown = page.evaluate("""() => {
        const map = document.getElementById("map");
        const single = map.querySelectorAll("path.leaflet-interactive").length;
        const clustered = [...map.querySelectorAll(".marker-cluster span")]
            .reduce((sum, el) => sum + parseInt(el.textContent, 10), 0);
        return single + clustered;
    }""")
    assert shown == 5
    page.get_by_role("button", name="Show only the reports in this map area").click()
    expect(page).to_have_url(re.compile(r"view=map&bbox=-0\.\d+%2C51\.\d+"))
    expect(page.get_by_text("Only reports inside an area of the map.")).to_be_visible()
    expect(page.locator("#queue-table .row-link")).to_have_count(5)


def test_queue_filter_lives_in_the_url(page: Page, site: Site):
    sign_in(page, site, "ana@example.org")
    page.get_by_text("Filter the queue").click()
    page.get_by_label("Type").select_option("sexual")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"type=sexual"))
    expect(page.locator("#queue-table .row-link")).to_have_count(1)
    expect(page.locator("#queue-table")).to_contain_text("Two girls")


def test_account_enrols_totp_and_manages_tokens(page: Page, site: Site):
    sign_in(page, site, "tom@example.org")
    page.get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.get_by_alt_text("QR code holding your new secret key")).to_be_visible()
    shot(page, "account-totp")
    secret = page.locator(".secret").inner_text().replace(" ", "")
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm the code").click()
    expect(page.get_by_role("status")).to_contain_text("Your authenticator app is set up")
    expect(page.get_by_text("Set up on")).to_be_visible()

    page.get_by_label("Name of the new token").fill("laptop script")
    page.get_by_role("button", name="Create a token").click()
    token = page.locator("#new-token code").inner_text()
    assert token.startswith("stp_")
    expect(page.get_by_role("cell", name="laptop script", exact=True)).to_be_visible()
    shot(page, "account-tokens")
    me = page.request.get(site("/api/v1/triage/me"), headers={"Authorization": f"Bearer {token}"})
    assert me.status == 200 and me.json()["email"] == "tom@example.org"
    page.get_by_role("button", name="Revoke laptop script").click()
    expect(page.get_by_role("status")).to_contain_text("The token is revoked")
    expect(page.get_by_role("cell", name="laptop script", exact=True)).to_have_count(0)
    me = page.request.get(site("/api/v1/triage/me"), headers={"Authorization": f"Bearer {token}"})
    assert me.status == 401


def test_every_page_sends_the_security_headers_and_breaks_no_policy(page: Page, site: Site):
    violations = []
    page.on("console", lambda msg: violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    sign_in(page, site, "ana@example.org")
    for path in ("/triage/reports", "/triage/reports?view=map", "/triage/account",
                 "/triage/help", f"/triage/reports/{site.reports['xss']}", "/triage/admin",
                 "/triage/no-such-page"):
        response = page.goto(site(path))
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
        assert headers["cache-control"] == "no-store", path
    assert violations == []


def test_pages_work_with_javascript_off(browser, site: Site):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, site, "ana@example.org")
        expect(page.locator("#queue-table .row-link")).to_have_count(5)
        page.get_by_role("link", name=re.compile(r"^R-T-")).first.click()
        expect(page.locator("#description")).to_have_text(XSS)
        expect(page.locator("#map")).to_be_hidden()  # no empty map box without scripts
    finally:
        context.close()
