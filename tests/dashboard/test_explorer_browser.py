"""The usage explorer in a real browser (Debian's Chromium through Playwright): alice picks
dates and a grouping; the chart's bars are about 15 px wide with horizontal labels, its
tooltip and its tables show the ledger's figures, the strict CSP holds and axe finds
nothing serious. Screenshots land in test-artifacts/ for a person to look at."""

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from billing.money import format_money
from dashboard.formatting import format_chart_exact
from demo.accounts import ACME, seed_demo_accounts
from tests.dashboard.test_browser import ARTIFACTS, _serious, log_in
from tests.dashboard.test_explorer import ledger_usage
from tests.ledger import buy, charge, realistic_usage, record

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
    # The chart opens on its latest days; a bar's tooltip gives the exact amount.
    last = bars.last
    last.scroll_into_view_if_needed()
    last.hover()
    expect(last.locator(".bar__tip")).to_be_visible()
    spent = sum((v[0] for (period, _), v in expected.items() if period == today), Decimal(0))
    tip = last.locator(".bar__tip").inner_text()
    assert tip.endswith(f": {format_chart_exact(spent)}"), (tip, spent)
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


# The plot's parts as the browser lays them out: the axis labels, the scroll box (the
# plot's visible width) and the bars' own boxes.
EXPLORER_GEOMETRY_JS = """(chart) => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return {x: r.left, r: r.right, y: r.top, b: r.bottom, w: r.width, h: r.height}; };
  const bars = [...chart.querySelectorAll('.bar')].map(box);
  return {
    ticks: [...chart.querySelectorAll('.chart__axis text')].map(
      (t) => ({text: t.textContent, box: box(t)})),
    plot: box(chart.querySelector('.chart__scroll')),
    first: bars[0], last: bars[bars.length - 1],
    areas: [...chart.querySelectorAll('.bar__area')].map((a) => box(a).w),
  };
}"""


@pytest.mark.parametrize("granularity", ["day", "month"])
def test_the_explorers_axis_names_its_dollars_and_its_bars_span_the_plot(new_page, granularity):
    """Issue 28: the y-axis printed nothing and the bars filled ~60 % of the plot's width.
    By day, a largest day of $1.00 gives an axis of $0.00 … $1.00 in $0.20 steps; by
    month, the axis starts at $0.00 and its top covers the largest month. Each label is
    drawn, bottom to top; the columns spread over the whole plot."""
    acme = seed_demo_accounts()[ACME.key]
    now = timezone.now()
    buy(acme, "100", at=now - timedelta(days=40))
    # $0.10 a day (1,000 images) for 19 days, and $1.00 today (10,000 images).
    moments = [now - timedelta(days=d) for d in range(20)]
    charge(acme, record(now, images=10_000), *[record(at, images=1_000) for at in moments[1:]])
    per_month: dict[date, Decimal] = defaultdict(Decimal)
    for at in moments:
        month = at.astimezone(acme.tzinfo).date().replace(day=1)
        per_month[month] += Decimal("1.00") if at == now else Decimal("0.10")
    url = reverse("dashboard:usage_explorer", kwargs={"license_id": acme.public_id})
    page = new_page(width=1280)
    log_in(page, "alice@acme.example")
    page.goto(f"{url}?granularity={granularity}")
    chart = page.get_by_test_id("explorer-chart")
    geometry = chart.evaluate(EXPLORER_GEOMETRY_JS)
    labels = [t["text"] for t in geometry["ticks"]]
    if granularity == "day":
        assert labels == ["$0.00", "$0.20", "$0.40", "$0.60", "$0.80", "$1.00"]
    else:
        dollars = [Decimal(label.removeprefix("$")) for label in labels]
        peak = max(per_month.values())
        assert dollars[0] == 0 and dollars == sorted(set(dollars)), labels
        assert peak <= dollars[-1] < 2 * peak, labels
    assert all(t["box"]["w"] > 10 for t in geometry["ticks"])  # drawn, not an empty text
    tops = [t["box"]["y"] for t in geometry["ticks"]]
    assert tops == sorted(tops, reverse=True)  # $0.00 at the bottom, the top amount on top
    plot = geometry["plot"]
    assert geometry["first"]["x"] - plot["x"] < 30, geometry
    assert plot["r"] - geometry["last"]["r"] < 40, geometry
    assert all(w >= 14 for w in geometry["areas"])
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)
    chart.screenshot(path=str(ARTIFACTS / f"explorer-axis-{granularity}s.png"))
