"""The console in Chromium, as the issue's "Done when" walks it: staff search carol's email
and find both licenses, open Acme and see balance, sync state and the running-balance
ledger on one page; billing closes last month, and a future month is refused."""

import os
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, User
from accounts.otp import staff_otp_enrol
from accounts.roles import BILLING, SUPPORT
from billing.models import ClosedMonth, LicenseBalance
from tests.accounts.factories import PASSWORD, LicenseFactory, MembershipFactory, UserFactory
from tests.conftest import totp_code
from tests.ledger import buy, record_usage

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


def test_support_finds_carol_and_reads_acme_on_one_page(new_page, demo_like):
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
    assert page.locator("input[value='Sync now']").count() == 1
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


def test_billing_closes_last_month_and_a_future_month_is_refused(new_page, demo_like):
    _, _, last_month = demo_like
    page = new_page(width=1366, height=900)
    sign_in(page, "billing@portal.example")
    page.goto(f"/admin/billing/ledgerentry/reconciliation/?month={last_month:%Y-%m}")
    page.click(f"text=Close {last_month:%B %Y}")
    page.wait_for_selector(f"text={last_month:%B %Y} is closed")
    shot(page, "closed")
    assert ClosedMonth.objects.filter(month=last_month).exists()
    future = (timezone.localdate().replace(day=1) + timedelta(days=40)).replace(day=1)
    page.goto(f"/admin/billing/ledgerentry/reconciliation/?month={future:%Y-%m}")
    assert page.locator(f"text={future:%B %Y} is in the future").count() == 1
    assert page.csp_violations == []
