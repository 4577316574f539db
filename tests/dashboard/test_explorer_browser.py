"""The usage explorer in a real browser (Debian's Chromium through Playwright): alice picks
dates and a grouping; the chart's bars are about 15 px wide with horizontal labels, its
tooltip and its tables show the ledger's figures, the strict CSP holds and axe finds
nothing serious. Screenshots land in test-artifacts/ for a person to look at."""

from datetime import timedelta
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from billing.money import format_money
from demo.accounts import ACME, seed_demo_accounts
from tests.dashboard.test_browser import ARTIFACTS, _serious, log_in
from tests.dashboard.test_explorer import ledger_usage
from tests.ledger import buy, charge, realistic_usage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_alice_explores_a_year_by_endpoint_and_a_month_by_service(new_page):
    acme = seed_demo_accounts()[ACME.key]
    now = timezone.now()
    buy(acme, "500", at=now - timedelta(days=400))
    charge(acme, *realistic_usage(now=now, days=380, calls_per_day=3, seed=5))
    today = now.astimezone(acme.tzinfo).date()
    start = today - timedelta(days=364)
    url = reverse("dashboard:usage_explorer", kwargs={"license_id": acme.public_id})

    page = new_page()
    log_in(page, "alice@acme.example")
    page.goto(reverse("dashboard:reports", kwargs={"license_id": acme.public_id}))
    page.get_by_role("link", name="Usage explorer").click()
    page.get_by_label("From", exact=True).fill(start.isoformat())
    page.get_by_label("To", exact=True).fill(today.isoformat())
    page.locator('select[name="group_by"]').select_option("endpoint")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    assert page.url.split("?")[0].endswith(url)

    expected = ledger_usage(acme, start, today, "day", "endpoint")
    total = sum((v[0] for v in expected.values()), Decimal(0))
    expect(page.get_by_test_id("explorer-grand-total")).to_have_text(format_money(total))
    chart = page.get_by_test_id("explorer-chart")
    bars = chart.locator(".bar")
    expect(bars).to_have_count(365)
    # Bars at the guide's proportions, labels horizontal (no rotated text anywhere).
    area = chart.locator(".bar__area").first.bounding_box()
    assert area is not None and 14 <= area["width"] <= 16
    label = chart.locator(".bar__label").first
    assert label.evaluate("e => getComputedStyle(e).writingMode") == "horizontal-tb"
    # Every label is one horizontal line: none is taller than a line of its text.
    tallest = chart.evaluate(
        "c => Math.max(...[...c.querySelectorAll('.bar__label')]"
        ".map(e => e.getBoundingClientRect().height))"
    )
    assert tallest < 20
    # The chart opens on its latest days; a bar's tooltip reads in cents.
    last = bars.last
    last.scroll_into_view_if_needed()
    last.hover()
    expect(last.locator(".bar__tip")).to_be_visible()
    spent = sum((v[0] for (period, _), v in expected.items() if period == today), Decimal(0))
    tip = last.locator(".bar__tip").inner_text()
    assert tip.endswith(f": ${spent:.2f}") or (
        tip.endswith("<$0.01") and 0 < spent < Decimal("0.01")
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer-year-by-endpoint.png"), full_page=True)

    page.locator('select[name="group_by"]').select_option("service")
    page.locator('select[name="granularity"]').select_option("month")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    expect(chart.locator(".bar")).to_have_count(13 if start.day != 1 else 12)
    expect(page.get_by_test_id("explorer-grand-total")).to_have_text(format_money(total))
    page.screenshot(path=str(ARTIFACTS / "explorer-months-by-service.png"), full_page=True)

    # A backwards range: the message names the field, beside it.
    page.get_by_label("From", exact=True).fill(today.isoformat())
    page.get_by_label("To", exact=True).fill(start.isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.locator('.error[data-field="to"]')).to_have_text("'to' must be on or after 'from'.")

    assert page.csp_violations == [] and page.bad_responses == [
        r
        for r in page.bad_responses
        if "usage/?" in r  # the refused range is a 400 page
    ]
    assert _serious(Axe().run(page)) == []
    phone = new_page(width=375)
    log_in(phone, "alice@acme.example")
    phone.goto(url)
    assert _serious(Axe().run(phone)) == []
    phone.screenshot(path=str(ARTIFACTS / "explorer-phone.png"), full_page=True)
