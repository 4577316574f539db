"""The console in Chromium, as the issue's "Done when" walks it: staff search carol's email
and find both licenses, open Acme and see balance, sync state and the running-balance
ledger on one page, Sync now as Support (audited); billing closes last month, a late record
dated in it posts in the open month and leaves its statement unchanged, and a future month
is refused."""

import os
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from accounts.models import AuditEvent, Membership, User
from accounts.otp import staff_otp_enrol
from accounts.roles import BILLING, SUPPORT
from billing.models import ClosedMonth, LedgerEntry, LicenseBalance
from tests.accounts.factories import PASSWORD, LicenseFactory, MembershipFactory, UserFactory
from tests.conftest import totp_code
from tests.console.test_console import month_statement
from tests.ledger import buy, record_usage
from tests.processes import profile_for, simulator_start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")  # a folder: save screenshots there to look at


def shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def sign_in(page, email):
    """Staff through the admin's login with a TOTP code (an authenticator enrolled for
    them), as they must; customers through the portal's login."""
    user = User.objects.get(email=email)
    if not user.is_staff:
        page.goto("/accounts/login/")
        page.fill("input[name=username]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit], input[type=submit]")
        return
    if not TOTPDevice.objects.filter(user=user).exists():
        staff_otp_enrol(acting_user=None, user=user)
    page.goto("/admin/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=otp_token]", totp_code(user))
    page.click("input[type=submit], button[type=submit]")


@pytest.fixture
def demo_like(db):
    acme = LicenseFactory(name="Acme Analytics", key="ACME-PRO-0001", timezone="America/New_York")
    globex = LicenseFactory(name="Globex Labs", key="GLOBEX-STD-0002", timezone="Europe/Berlin")
    carol = UserFactory(email="carol@multi.example")
    for lic in (acme, globex):
        MembershipFactory(license=lic, user=carol, role=Membership.Role.MEMBER)
    first = timezone.localdate().replace(day=1)
    last_month = (first - timedelta(days=1)).replace(day=1)
    at = datetime(last_month.year, last_month.month, 3, 10, tzinfo=acme.tzinfo)
    buy(acme, "40", "p-1", at=at)
    for i in range(30):
        record_usage(
            acme, f"rec-{i}", at=at + timedelta(hours=7 * i), input_tokens=50_000 + i,
            completion_tokens=20_000, request_id=f"req-{i}",
        )  # fmt: skip
    for email, group in (("staff@portal.example", SUPPORT), ("billing@portal.example", BILLING)):
        UserFactory(email=email, is_staff=True).groups.add(Group.objects.get(name=group))
    return acme, globex, last_month


@pytest.fixture
def upstream(settings, demo_like):
    """The upstream simulator serving a day of Acme's calls, for Sync now."""
    acme = demo_like[0]
    server = simulator_start(profiles=[profile_for(acme, days=1)], token=settings.UPSTREAM_TOKEN)
    settings.UPSTREAM_URL = server.url
    yield server
    server.stop()


def test_support_finds_carol_and_reads_acme_on_one_page(new_page, demo_like, upstream):
    acme, _, _ = demo_like
    page = new_page(width=1366, height=900)
    sign_in(page, "staff@portal.example")
    page.wait_for_selector("text=Operations overview")
    shot(page, "overview")
    page.fill("#console-q", "carol@multi.example")
    with page.expect_navigation():  # count the rows of the results page, not the overview
        page.click("input[type=submit][value=Search]")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert sorted(rows.locator("th a").all_inner_texts()) == ["Acme Analytics", "Globex Labs"]
    shot(page, "search")
    page.click("text=Acme Analytics")
    page.wait_for_selector("text=Usage sync")
    shot(page, "license")
    balance = LicenseBalance.objects.get(license=acme).balance
    assert Decimal(page.inner_text("[data-balance]")) == balance
    assert Decimal(page.locator("[data-running]").first.inner_text()) == balance
    # Sync now, as Support: runs against the upstream, says what it did, and is audited;
    # the newest running balance still equals the balance afterwards.
    page.click("input[value='Sync now']")
    page.wait_for_selector("ul.messagelist li")
    assert page.inner_text("ul.messagelist li").startswith("Acme Analytics: ")
    audit = AuditEvent.objects.for_license(acme).get(action="usage.sync_now")
    assert audit.actor.email == "staff@portal.example"
    balance = LicenseBalance.objects.get(license=acme).balance
    assert Decimal(page.inner_text("[data-balance]")) == balance
    assert Decimal(page.locator("[data-running]").first.inner_text()) == balance
    # Descriptions wrap instead of running off-screen at 1366 px.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366
    page.click("text=full ledger and search")
    page.fill("#ledger-q", "req-7")
    with page.expect_navigation():
        page.click("input[type=submit][value=Find]")
    assert "(req-7)" in page.locator("table.console-ledger tbody tr").first.inner_text()
    shot(page, "ledger")
    assert page.csp_violations == []


def first_of_this_month():
    return timezone.localdate().replace(day=1)


def test_billing_closes_last_month_and_a_future_month_is_refused(new_page, demo_like):
    acme, _, last_month = demo_like
    page = new_page(width=1366, height=900)
    sign_in(page, "billing@portal.example")
    page.goto(f"/admin/billing/ledgerentry/reconciliation/?month={last_month:%Y-%m}")
    page.get_by_role("button", name=f"Close {last_month:%B %Y}…").click()
    # The close asks first, showing what it freezes (issue 28); nothing is closed yet.
    expect(page.get_by_role("heading", name=f"Close {last_month:%B %Y}?")).to_be_visible()
    expect(page.get_by_test_id("month-close-confirm")).to_contain_text("freezes its figures")
    shot(page, "close-confirm")
    assert not ClosedMonth.objects.filter(month=last_month).exists()
    page.get_by_role("button", name=f"Yes, close {last_month:%B %Y}").click()
    expect(page.locator(".messagelist")).to_contain_text(f"{last_month:%B %Y} is closed:")
    shot(page, "closed")
    assert ClosedMonth.objects.filter(month=last_month).exists()
    # A late upstream record dated inside the closed month posts in the open month; the
    # closed month's statement and reconciliation keep the figures of the close.
    statement = month_statement(acme, last_month)
    late_at = datetime(last_month.year, last_month.month, 27, 9, tzinfo=acme.tzinfo)
    record_usage(acme, "late-1", at=late_at, completion_tokens=10**6)
    late = LedgerEntry.objects.for_license(acme).get(external_id="late-1:ai_data_completion")
    assert late.original_occurred_at == late_at
    assert timezone.localtime(late.occurred_at, acme.tzinfo).date() >= first_of_this_month()
    assert month_statement(acme, last_month) == statement
    page.goto(f"/admin/billing/ledgerentry/reconciliation/?month={last_month:%Y-%m}")
    assert page.locator("text=Its figures are those of the close.").count() == 1
    future = (timezone.localdate().replace(day=1) + timedelta(days=40)).replace(day=1)
    page.goto(f"/admin/billing/ledgerentry/reconciliation/?month={future:%Y-%m}")
    assert page.locator(f"text={future:%B %Y} is in the future").count() == 1
    assert page.csp_violations == []
