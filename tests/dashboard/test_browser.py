"""The dashboard in a real browser (Debian's Chromium through Playwright).

What only a browser shows: the numbers as rendered, tooltips on hover and keyboard focus,
the flashing warning and reduced motion, the automatic refresh, the strict CSP holding
(no violation reported by the browser), accessibility (axe-core), phone and desktop layout.
Screenshots land in test-artifacts/ (git-ignored) for a person to look at.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import License
from billing.models import LedgerEntry
from billing.money import format_money
from dashboard.formatting import format_chart_exact, format_count
from demo.accounts import ACME, DEMO_PASSWORD, DEMO_TOTP_SECRET, GLOBEX, seed_demo_accounts
from tests.conftest import totp_code
from tests.ledger import LedgerFigures, buy, charge, realistic_usage, record
from usage.models import SyncState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LONG_ENDPOINT = "/v1/chat/completions?model=large-context-reasoning&stream=true&user=batch-42"


@dataclass
class Demo:
    acme: License
    globex: License


@pytest.fixture
def demo() -> Demo:
    """The demo licenses and logins, with history made through billing's services:
    Acme healthy with a year of usage, Globex below its $1.00 threshold."""
    licenses = seed_demo_accounts()
    acme, globex = licenses[ACME.key], licenses[GLOBEX.key]
    now = timezone.now()
    buy(acme, "100", at=now - timedelta(days=420))
    buy(acme, "250", at=now - timedelta(days=200))
    charge(acme, *realistic_usage(now=now, days=400, calls_per_day=3, seed=1))
    charge(acme, record(now - timedelta(minutes=30), input_tokens=1_200, endpoint=LONG_ENDPOINT))
    buy(globex, "5", at=now - timedelta(days=40))
    # 22 calls of 2,000 images ($0.20 each): $4.40 spent, $0.60 left.
    charge(globex, *[record(now - timedelta(days=i, hours=1), images=2_000) for i in range(22)])
    for license in (acme, globex):
        SyncState.objects.create(license=license, last_success_at=now - timedelta(minutes=3))
    return Demo(acme=acme, globex=globex)


def dashboard_path(license: License) -> str:
    return reverse("dashboard:overview", kwargs={"license_id": license.public_id})


def log_in(page, email: str) -> None:
    page.goto(reverse("accounts:login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def figure(page, testid: str) -> str:
    return page.get_by_test_id(testid).inner_text().strip()


def assert_dashboard_matches_ledger(page, license: License) -> None:
    expected = LedgerFigures(license, timezone.now())
    expect(page.get_by_role("heading", level=1)).to_contain_text(license.name)
    assert figure(page, "balance") == format_money(expected.balance)
    assert figure(page, "total-purchased") == format_money(expected.total_purchased)
    assert figure(page, "total-spent") == format_money(expected.total_spent)
    assert figure(page, "credits-used") == format_money(expected.total_spent)
    assert figure(page, "api-calls") == format_count(expected.api_calls)
    assert figure(page, "tokens") == format_count(expected.tokens)
    assert figure(page, "images") == format_count(expected.images)
    assert figure(page, "total-transactions") == format_count(expected.transactions)
    assert figure(page, "image-spent") == format_money(expected.image_spent)
    assert figure(page, "text-spent") == format_money(expected.text_spent)
    average = Decimal(expected.total_spent / expected.transactions)
    assert figure(page, "average") == format_money(average)

    overview = page.locator("#account-overview")
    expect(overview).to_contain_text(license.contact_email)
    for domain in license.domains.all():
        expect(overview).to_contain_text(domain.hostname)
    expect(overview).to_contain_text(license.get_license_type_display())
    expect(overview).to_contain_text(f"{license.member_since:%b} {license.member_since.day}")

    daily = page.locator("#daily-section .bar")
    expect(daily).to_have_count(30)
    expect(page.locator("#monthly-section .bar")).to_have_count(12)
    today = expected.today
    expect(daily.last).to_have_attribute("data-day", today.isoformat())
    for bar in daily.all():
        day = bar.get_attribute("data-day")
        amount = expected.per_day.get(datetime.fromisoformat(day).date(), Decimal(0))
        assert (
            bar.get_attribute("aria-label")
            .split(" (today)")[0]
            .endswith(f": {format_chart_exact(amount)}")
        ), day

    rows = page.locator("table.transactions tbody tr")
    expect(rows).to_have_count(min(100, len(expected.entries)))
    newest = expected.newest[0]
    local = timezone.localtime(newest.occurred_at, license.tzinfo)
    first = rows.first
    expect(first.locator("td").nth(0)).to_have_text(f"{local:%b} {local.day}, {local:%H:%M}")
    expect(first.locator("td").nth(1)).to_have_text(newest.get_kind_display())
    expect(first.locator("td").nth(3)).to_contain_text(format_money(abs(newest.amount)))


@pytest.mark.parametrize(
    ("email", "licenses"),
    [
        ("alice@acme.example", ["acme"]),
        ("bob@globex.example", ["globex"]),
        ("carol@multi.example", ["acme", "globex"]),
    ],
)
def test_each_demo_login_sees_its_dashboards_with_the_ledgers_numbers(
    new_page, demo, email, licenses
):
    page = new_page()
    log_in(page, email)
    for name in licenses:
        license = getattr(demo, name)
        if len(licenses) > 1:  # carol picks the license from the switcher
            page.goto(reverse("accounts:license_list"))
            page.get_by_role("link", name=license.name).click()
        else:
            page.wait_for_url(re.compile(re.escape(dashboard_path(license)) + "$"))
        assert_dashboard_matches_ledger(page, license)
        warning = page.get_by_role("alert").filter(has_text="Low balance")
        if license == demo.globex:
            expect(warning).to_be_visible()
            expect(
                warning.get_by_role("link", name="Click here to purchase credits")
            ).to_be_visible()
            expect(page.get_by_test_id("balance")).to_have_class(re.compile(r"\bnegative\b"))
        else:
            expect(warning).to_have_count(0)
            expect(page.get_by_test_id("balance")).to_have_class(re.compile(r"\bpositive\b"))
    assert page.csp_violations == []
    assert page.bad_responses == []  # every stylesheet, script and icon is served


def test_a_daily_bar_shows_its_tooltip_on_hover_and_on_keyboard_focus(new_page, demo):
    page = new_page()
    log_in(page, "alice@acme.example")
    expected = LedgerFigures(demo.acme, timezone.now())
    bars = page.locator("#daily-section .bar")
    used = page.locator("#daily-section .bar.bar--used")
    target = used.nth(used.count() // 2)
    day = datetime.fromisoformat(target.get_attribute("data-day")).date()
    text = f"{day:%b} {day.day}: {format_chart_exact(expected.per_day[day])}"

    tip = target.locator(".bar__tip")
    expect(tip).to_be_hidden()
    target.hover()
    expect(tip).to_be_visible()
    expect(tip).to_have_text(text)
    page.mouse.move(0, 0)
    expect(tip).to_be_hidden()

    # Keyboard: the chart is one Tab stop (today's bar); the arrow keys walk the days.
    index = [b.get_attribute("data-day") for b in bars.all()].index(day.isoformat())
    page.locator("#balance-section").click()  # start before the charts
    for _ in range(200):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#daily-section') !== null"):
            break
    expect(bars.last).to_be_focused()
    expect(bars.last.locator(".bar__tip")).to_be_visible()
    for _ in range(29 - index):
        page.keyboard.press("ArrowLeft")
    expect(target).to_be_focused()
    expect(tip).to_be_visible()
    expect(tip).to_have_text(text)
    ARTIFACTS.mkdir(exist_ok=True)
    page.mouse.move(0, 0)
    page.locator("#daily-section").screenshot(path=ARTIFACTS / "daily-tooltip-focus.png")
    page.keyboard.press("Tab")  # one more Tab leaves the chart
    assert page.evaluate("document.activeElement.closest('#daily-section .chart') === null")

    # The same text is what a screen reader hears, and the table lists every day exactly.
    expect(target).to_have_attribute("aria-label", re.compile("^" + re.escape(text)))
    page.get_by_text("Show the daily numbers as a table").click()
    expect(page.locator("#daily-table")).to_contain_text(format_money(expected.per_day[day]))


def test_charts_and_tooltips_work_without_javascript(new_page, demo):
    page = new_page(java_script_enabled=False)
    log_in(page, "alice@acme.example")
    bars = page.locator("#monthly-section .bar.bar--used")
    assert bars.count() >= 10
    bars.first.hover()
    expect(bars.first.locator(".bar__tip")).to_be_visible()
    rect = bars.first.locator("rect")
    assert float(rect.get_attribute("height")) > 0
    # Without the script every bar is its own Tab stop.
    bars.nth(2).focus()
    page.keyboard.press("Tab")
    expect(bars.nth(3)).to_be_focused()
    expect(bars.nth(3).locator(".bar__tip")).to_be_visible()


def test_long_descriptions_are_cut_with_the_full_text_on_hover(new_page, demo):
    page = new_page()
    log_in(page, "alice@acme.example")
    cell = page.locator("table.transactions td.description [title]").first
    expect(cell).to_have_attribute("title", re.compile(re.escape(LONG_ENDPOINT)))
    shown = cell.locator("[aria-hidden=true]").inner_text()
    assert len(shown) == 50 and shown.endswith("…")


def test_low_balance_warning_flashes_and_holds_still_for_reduced_motion(new_page, demo):
    page = new_page()
    log_in(page, "bob@globex.example")
    warning = page.locator(".low-balance")
    expect(warning).to_be_visible()
    assert warning.evaluate("el => getComputedStyle(el).animationName") != "none"

    calm = new_page(reduced_motion="reduce")
    log_in(calm, "bob@globex.example")
    warning = calm.locator(".low-balance")
    expect(warning).to_be_visible()
    assert warning.evaluate("el => getComputedStyle(el).animationName") == "none"


def test_the_page_refreshes_its_data_every_five_minutes_without_reloading(new_page, demo):
    page = new_page()
    page.clock.install()
    log_in(page, "alice@acme.example")
    before = figure(page, "balance")
    page.evaluate("window.__notReloaded = true")
    page.locator("#monthly-table summary").click()  # an open table stays open

    buy(demo.acme, "42.00", at=timezone.now(), ref="browser-refresh")
    page.clock.run_for("04:50")
    page.wait_for_timeout(300)
    assert figure(page, "balance") == before  # not yet: every 5 minutes
    page.clock.run_for("00:15")
    balance = format_money(LedgerFigures(demo.acme, timezone.now()).balance)
    expect(page.get_by_test_id("balance")).to_have_text(balance)
    expect(page.locator("table.transactions tbody tr").first).to_contain_text("$42.000000")
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#monthly-table")).to_have_attribute("open", "")
    assert page.csp_violations == []


def test_the_refresh_clears_the_warning_once_credits_arrive(new_page, demo):
    page = new_page()
    page.clock.install()
    log_in(page, "bob@globex.example")
    warning = page.get_by_role("alert").filter(has_text="Low balance")
    expect(warning).to_be_visible()
    buy(demo.globex, "20.00", at=timezone.now(), ref="browser-top-up")
    page.clock.run_for("05:01")
    expect(warning).to_have_count(0)
    expect(page.get_by_test_id("balance")).to_have_class(re.compile(r"\bpositive\b"))


def test_the_refresh_says_so_when_the_session_has_ended(new_page, demo):
    page = new_page()
    page.clock.install()
    log_in(page, "alice@acme.example")
    before = figure(page, "balance")
    page.context.clear_cookies()
    page.clock.run_for("05:01")
    expect(
        page.get_by_text("Your session has ended. Reload the page to log in again.")
    ).to_be_visible()
    assert figure(page, "balance") == before  # the login page never replaces the figures


def test_screenshots_at_phone_and_desktop_width(new_page, demo):
    ARTIFACTS.mkdir(exist_ok=True)
    for width, name in ((1280, "desktop"), (375, "phone")):
        for email, license in (("alice@acme.example", "acme"), ("bob@globex.example", "globex")):
            page = new_page(width=width, height=800)
            log_in(page, email)
            page.screenshot(path=ARTIFACTS / f"dashboard-{license}-{name}.png", full_page=True)
            # Nothing sticks out sideways: wide content scrolls inside its own box.
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, f"{name}: page is {overflow}px wide"


def test_empty_license_screenshot_and_hint(new_page, demo):
    from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory

    user = UserFactory(email="new@customer.example")
    user.set_password(DEMO_PASSWORD)
    user.save()
    license = LicenseFactory(name="Fresh Start Ltd")
    MembershipFactory(license=license, user=user)
    page = new_page(width=375)
    log_in(page, "new@customer.example")
    expect(page.get_by_text("Welcome! Your dashboard is ready.")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("$0.000000")
    expect(page.locator("#daily-section .bar.bar--zero")).to_have_count(30)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "dashboard-empty-phone.png", full_page=True)
    # Download History says there is nothing yet (issue 28), and no file arrives.
    downloads: list = []
    page.on("download", lambda download: downloads.append(download))
    page.get_by_role("link", name="Download History").click()
    expect(page.get_by_role("heading", name="Nothing to download yet")).to_be_visible()
    expect(page.get_by_test_id("nothing-to-download")).to_have_text(
        "No transaction history to download yet."
    )
    page.screenshot(path=ARTIFACTS / "download-history-empty-phone.png", full_page=True)
    assert downloads == []
    page.get_by_role("link", name="Back to the dashboard").click()
    expect(page.get_by_text("Welcome! Your dashboard is ready.")).to_be_visible()


def _serious(results) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_accessibility_no_serious_or_critical_violations(new_page, demo):
    axe = Axe()
    page = new_page()
    log_in(page, "bob@globex.example")  # the low-balance state has the most on it
    pages = [
        dashboard_path(demo.globex),
        reverse("dashboard:help", kwargs={"license_id": demo.globex.public_id}),
        reverse("dashboard:reports", kwargs={"license_id": demo.globex.public_id}),
        reverse("dashboard:test_api", kwargs={"license_id": demo.globex.public_id}),
        reverse("dashboard:alert_settings", kwargs={"license_id": demo.globex.public_id}),
    ]
    for path in pages:
        page.goto(path)
        problems = _serious(axe.run(page))
        assert problems == [], f"{path}: {problems}"
    phone = new_page(width=375)
    log_in(phone, "alice@acme.example")
    assert _serious(axe.run(phone)) == []


def test_download_history_gives_the_csv_with_the_ledgers_rows(new_page, demo):
    page = new_page()
    log_in(page, "bob@globex.example")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download History").click()
    download = info.value
    assert re.fullmatch(
        r"token_usage_history_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}\.csv", download.suggested_filename
    )
    lines = Path(download.path()).read_text().strip().splitlines()
    assert len(lines) == 1 + LedgerEntry.objects.for_license(demo.globex).count()


def test_refresh_data_answers_with_a_banner(new_page, demo):
    page = new_page()
    log_in(page, "alice@acme.example")
    page.get_by_role("button", name="Refresh Data").click()
    page.wait_for_load_state()
    expect(page.locator(".messages .message").first).to_be_visible()
    assert page.url.endswith(dashboard_path(demo.acme))


def test_the_admin_runs_under_the_strict_policy(new_page, demo):
    from django.contrib.auth import get_user_model

    page = new_page()
    admin = get_user_model().objects.get(email="admin@portal.example")
    assert admin.is_superuser
    # The admin asks for the authenticator's code too: computed from the demo's TOTP secret
    # (the README's demo table), as a newcomer's authenticator app would.
    page.goto(reverse("admin:login"))
    page.get_by_label("Email").fill("admin@portal.example")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_label("Authenticator code").fill(totp_code(DEMO_TOTP_SECRET))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    expect(page.locator("#site-name")).to_be_visible()
    for path in (
        reverse("admin:index"),
        reverse("admin:accounts_license_changelist"),
        reverse("admin:accounts_license_change", args=[demo.acme.pk]),
        reverse("admin:accounts_license_add"),
    ):
        page.goto(path)
        expect(page.locator("#content")).to_be_visible()
    # The admin's own JavaScript runs: the changelist's select-all action checkbox.
    page.goto(reverse("admin:accounts_user_changelist"))
    page.locator("#action-toggle").check()
    expect(page.locator(".action-counter")).to_contain_text("selected")
    assert page.csp_violations == []


# Label boxes, bar boxes and whether any two overlap, measured by the browser.
CHART_GEOMETRY_JS = """() => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return {x: r.left, y: r.top, w: r.width, h: r.height, r: r.right, b: r.bottom}; };
  const meet = (a, b) => a.x < b.r - 0.5 && b.x < a.r - 0.5 && a.y < b.b - 0.5 && b.y < a.b - 0.5;
  const bars = [...document.querySelectorAll('#daily-section .bar')];
  const rects = bars.map((bar) => box(bar.querySelector('.bar__rect')));
  const labels = [...document.querySelectorAll('#daily-section .bar__amount span')].map(box);
  const clashes = [];
  labels.forEach((label, i) => {
    rects.forEach((rect, j) => { if (meet(label, rect)) clashes.push(`label ${i} on bar ${j}`); });
    labels.forEach((other, j) => { if (j > i && meet(label, other)) clashes.push(`labels ${i}/${j}`); });
  });
  const column = box(bars[0]);
  return {widths: rects.map((r) => r.w), column: column.w, clashes,
          labels: labels.map((l) => [l.w, l.h])};
}"""


def test_daily_amounts_read_horizontally_in_cents_beside_15px_bars(new_page):
    """The guide's daily chart: about 15 px bars on a desktop (fluid on a phone), the amount
    under each bar with spending, horizontal, in cents ("<$0.01" below a cent), and no
    label over a bar or over another label, at 1366 px (on a phone, 390 px, the amounts
    give way to the tooltips so that all 30 days fit)."""
    licenses = seed_demo_accounts()
    acme = licenses[ACME.key]
    now = timezone.now()
    buy(acme, "5000", at=now - timedelta(days=60))
    # Mixed magnitudes on consecutive days, the "$0.02 / $0.00646 / $0.003849" too.
    images = [123_400, 200, 64, 38, 12_300, 1_234_500, 9_900]
    charge(
        acme,
        *[record(now - timedelta(days=d), images=images[d % len(images)]) for d in range(30)],
    )
    ARTIFACTS.mkdir(exist_ok=True)
    for width, name in ((1366, "desktop"), (390, "phone")):
        page = new_page(width=width, height=900)
        log_in(page, "alice@acme.example")
        amounts = page.locator("#daily-section .bar__amount span")
        expect(amounts).to_have_count(30)
        page.mouse.move(0, 0)
        page.locator("#daily-section").screenshot(path=ARTIFACTS / f"daily-chart-{name}.png")
        page.locator("#monthly-section").screenshot(path=ARTIFACTS / f"monthly-chart-{name}.png")
        if name == "phone":
            # 30 days share a phone's width: the amounts are in the tooltips and the table
            # (test_the_daily_chart_shows_all_30_days_on_a_phone_with_exact_tooltips).
            expect(amounts.first).to_be_hidden()
            geometry = page.evaluate(CHART_GEOMETRY_JS)
            assert all(0 < w < geometry["column"] for w in geometry["widths"])
            continue
        texts = set(amounts.all_inner_texts())
        assert {"$12.34", "$0.02", "<$0.01", "$1.23", "$123.45", "$0.99"} <= texts, texts
        assert all(re.fullmatch(r"<\$0\.01|\$[\d,]+\.\d\d", t) for t in texts), texts
        geometry = page.evaluate(CHART_GEOMETRY_JS)
        assert geometry["clashes"] == []
        assert all(w > h for w, h in geometry["labels"])  # horizontal text
        assert all(14 <= w <= 16 for w in geometry["widths"]), geometry["widths"]


def test_carol_sees_each_licenses_balance_and_switches_between_them(new_page, demo):
    """carol belongs to Acme (healthy) and Globex (below its threshold): the license list
    says so beside each name, and the dashboard's switcher takes her from one to the other
    without going back to the list."""
    page = new_page(width=1366)
    log_in(page, "carol@multi.example")
    acme_row = page.get_by_test_id(f"license-{demo.acme.key}")
    globex_row = page.get_by_test_id(f"license-{demo.globex.key}")
    expect(acme_row.get_by_test_id("license-state")).to_have_text("Healthy")
    expect(globex_row.get_by_test_id("license-state")).to_have_text("Low balance")
    for row, license in ((acme_row, demo.acme), (globex_row, demo.globex)):
        balance = LedgerFigures(license, timezone.now()).balance
        expect(row.get_by_test_id("license-balance")).to_have_text(format_money(balance))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "license-list-carol.png", full_page=True)

    acme_row.get_by_role("link", name=demo.acme.name).click()
    switcher = page.get_by_test_id("license-switcher")
    switcher.locator("summary").click()
    page.screenshot(path=ARTIFACTS / "license-switcher-open.png")
    switcher.get_by_role("link", name=demo.globex.name).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(demo.globex.name)
    expect(page.locator(".low-balance")).to_be_visible()  # Globex is low: the warning shows


# The daily chart on a phone, as the browser lays it out: the scroll box, each bar's rect,
# and each label a person can see (a hidden one has no box, or visibility: hidden).
PHONE_DAILY_JS = """() => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return {x: r.left, r: r.right, y: r.top, b: r.bottom, w: r.width, h: r.height}; };
  const seen = (el) => { const r = el.getBoundingClientRect();
    return r.width > 0 && getComputedStyle(el).visibility === 'visible'; };
  const scroll = document.querySelector('#daily-section .chart__scroll');
  const labels = [...document.querySelectorAll(
    '#daily-section .bar__daynum, #daily-section .bar__weekday, #daily-section .bar__amount span'
  )].filter(seen).map((el) => ({text: el.textContent, ...box(el)}));
  return {
    scroll: box(scroll), scrollWidth: scroll.scrollWidth, clientWidth: scroll.clientWidth,
    rects: [...document.querySelectorAll('#daily-section .bar__rect')].map(box),
    labels,
  };
}"""


def test_the_daily_chart_shows_all_30_days_on_a_phone_with_exact_tooltips(new_page):
    """Issue 28: at 375 px the daily chart showed 14 of its 30 days, labels cut at its
    edge, with nothing saying the rest was a swipe away. Now every day's bar is in view
    without scrolling, no visible label is cut or runs into another, and a tapped bar's
    tooltip gives the exact amount ("Nov 14: $0.004213"); on a desktop too."""
    acme = seed_demo_accounts()[ACME.key]
    now = timezone.now()
    buy(acme, "100", at=now - timedelta(days=60))
    # $0.004213 (4,213 completion tokens at $1.00 per 1M) five days ago, $1.23 on 20 others.
    odd = now - timedelta(days=5)
    charge(
        acme,
        record(odd, completion_tokens=4_213),
        *[record(now - timedelta(days=d), images=12_300) for d in range(6, 26)],
    )
    day = odd.astimezone(acme.tzinfo).date()
    tip_text = f"{day:%b} {day.day}: $0.004213"
    ARTIFACTS.mkdir(exist_ok=True)

    phone = new_page(width=375, height=800, has_touch=True, is_mobile=True)
    log_in(phone, "alice@acme.example")
    bars = phone.locator("#daily-section .bar")
    expect(bars).to_have_count(30)
    geometry = phone.evaluate(PHONE_DAILY_JS)
    assert geometry["scrollWidth"] <= geometry["clientWidth"] + 1, "the chart scrolls sideways"
    view = geometry["scroll"]
    outside = [
        i for i, r in enumerate(geometry["rects"]) if r["x"] < view["x"] or r["r"] > view["r"]
    ]
    assert outside == [], f"bars out of view: {outside}"
    labels = geometry["labels"]
    assert labels, "no day is named under the chart"
    cut = [lb["text"] for lb in labels if lb["x"] < view["x"] - 0.5 or lb["r"] > view["r"] + 0.5]
    assert cut == []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            overlap = a["x"] < b["r"] - 0.5 and b["x"] < a["r"] - 0.5
            assert not (overlap and a["y"] < b["b"] - 0.5 and b["y"] < a["b"] - 0.5), (a, b)
    # Today is named, and days are named through the month (not only its end).
    texts = [lb["text"] for lb in labels]
    assert str(now.astimezone(acme.tzinfo).day) in texts and len(texts) >= 6

    target = phone.locator(f'#daily-section .bar[data-day="{day.isoformat()}"]')
    target.tap()
    tip = target.locator(".bar__tip")
    expect(tip).to_be_visible()
    expect(tip).to_have_text(tip_text)
    tip_box, box = tip.bounding_box(), phone.locator("#daily-section .chart__scroll").bounding_box()
    assert tip_box is not None and box is not None
    assert box["x"] <= tip_box["x"] and tip_box["x"] + tip_box["width"] <= box["x"] + box["width"]
    expect(target).to_have_attribute("aria-label", tip_text)
    phone.locator("#daily-section").screenshot(path=ARTIFACTS / "daily-chart-phone-tapped.png")
    phone.locator("#balance-section").tap()
    phone.locator("#daily-section").screenshot(path=ARTIFACTS / "daily-chart-phone-375.png")

    desktop = new_page(width=1366)
    log_in(desktop, "alice@acme.example")
    bar = desktop.locator(f'#daily-section .bar[data-day="{day.isoformat()}"]')
    bar.hover()
    expect(bar.locator(".bar__tip")).to_have_text(tip_text)
    expect(bar.locator(".bar__amount")).to_have_text("<$0.01")  # the label under it rounds
