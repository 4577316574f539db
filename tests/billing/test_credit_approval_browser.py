"""Four eyes in Chromium: one Billing member asks for a goodwill credit above the limit and
is told it waits; a second one opens the request, approves it, and the license is credited
once."""

import os
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from accounts.roles import BILLING
from billing.models import CreditApproval, LedgerEntry
from tests.accounts.factories import LicenseFactory, UserFactory
from tests.console.test_console_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")  # a folder: save screenshots there to look at


def shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def test_a_large_goodwill_credit_is_asked_for_then_approved_by_another(new_page):
    acme = LicenseFactory(name="Acme Analytics", key="ACME-PRO-0001")
    for email in ("asker@portal.example", "approver@portal.example"):
        UserFactory(email=email, is_staff=True).groups.add(Group.objects.get(name=BILLING))

    page = new_page()
    sign_in(page, "asker@portal.example")
    page.goto(f"/admin/billing/ledgerentry/license/{acme.pk}/goodwill/")
    assert "Up to $500.000000 is credited at once" in page.content()
    page.fill("input[name=amount]", "1,200.00")
    page.fill("textarea[name=reason]", "Three days of outages in June")
    shot(page, "approval-1-goodwill-form")
    page.click("input[type=submit]")
    page.wait_for_selector("text=waits for a second Billing member's approval")
    assert "You asked for this credit" in page.content()
    assert page.locator("input[value='Approve and credit']").count() == 0
    shot(page, "approval-2-requested")
    assert not LedgerEntry.objects.exists()

    approval = CreditApproval.objects.get()
    other = new_page()
    sign_in(other, "approver@portal.example")
    other.goto(f"/admin/billing/creditapproval/{approval.pk}/change/")
    shot(other, "approval-3-to-decide")
    other.click("input[value='Approve and credit']")
    other.wait_for_selector("text=credited as entry")
    shot(other, "approval-4-approved")
    assert other.csp_violations == [] and page.csp_violations == []

    credit = LedgerEntry.objects.get()
    assert (credit.kind, credit.amount) == ("credit", Decimal("1200.000000"))
    approval.refresh_from_db()
    assert approval.status == "approved"
