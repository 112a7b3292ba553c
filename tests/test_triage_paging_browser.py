"""Paging the queue in a real browser: keyset pages of 50, each report seen once, the filter kept
in every page's URL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from stopapp.accounts import services as accounts
from stopapp.db import unit_of_work
from stopapp.reports.models import utcnow
from tests.browser import PASSWORD, Site, live_site, sign_in
from tests.triage_helpers import new_report

REPORTS = 62  # a full page of 50 and a second of 12

# Failed sign-ins per client live in Redis (flushed by redis_conn): each test starts with none.
pytestmark = pytest.mark.usefixtures("redis_conn")


def _seed(app, site: Site) -> None:
    with app.app_context(), unit_of_work():
        accounts.create_user("pia@example.org", "analyst", PASSWORD, name="Pia Pager")
        now = utcnow()
        for number in range(REPORTS):
            # Two priorities, so that the page boundary falls among equal priorities and the
            # cursor's tie-break on age is what keeps the order.
            report = new_report(priority=60 if number % 2 else 40,
                                description=f"Workers at site {number} never leave.",
                                created_at=now - timedelta(minutes=number))
            site.reports[f"r{number}"] = report.reference


@pytest.fixture(scope="module")
def site(migrated_database, tmp_path_factory):
    with live_site(tmp_path_factory, _seed) as site:
        yield site


def _references(page: Page) -> list[str]:
    return page.locator("#queue-table .row-link").all_inner_texts()


def test_pages_through_the_queue_seeing_each_report_once(page: Page, site: Site):
    sign_in(page, site, "pia@example.org", path="/triage/sign-in?next=/triage/reports?q=never")
    expect(page.locator("#queue-table .row-link")).to_have_count(50)
    first = _references(page)
    # A report arriving while the analyst reads the first page: keyset paging neither repeats a
    # row nor skips one because of it.
    with site.app.app_context(), unit_of_work():
        new_report(priority=99, description="Workers never leave the farm.")
    page.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(re.compile(r"cursor=.+&q=never|q=never.*cursor="))
    expect(page.locator("#queue-table .row-link")).to_have_count(REPORTS - 50)
    second = _references(page)
    assert len(set(first + second)) == REPORTS
    assert set(first + second) == set(site.reports.values())
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="First page").click()
    expect(page.locator("#queue-table .row-link").first).to_contain_text(re.compile(r"R-T-"))
    # Back at the start, the newcomer (priority 99) heads the queue.
    expect(page.locator("#queue-table tbody tr").first).to_contain_text("the farm")
