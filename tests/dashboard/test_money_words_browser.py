"""Issue 26's "Done when", in Chromium: card refunds and goodwill credits carry their own
labels and signs on every page a customer reads — the dashboard's explanation line and
recent lines, All transactions, the card refund's own page and Billing history.

The license has every movement of the bridge (tests/bridge_license.py): a $4 refund of a $10
card purchase, a $5 goodwill credit, promotional grants, usage and a usage refund."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from accounts.models import License
from billing.models import LedgerEntry
from tests.accounts.factories import PASSWORD, MembershipFactory, UserFactory
from tests.bridge_license import license_with_every_movement

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "words@bridge.example"


def _page(license: License, name: str, **kwargs: object) -> str:
    return reverse(f"dashboard:{name}", kwargs={"license_id": license.public_id, **kwargs})


def _log_in(page: Page) -> None:
    page.goto(reverse("accounts:login"))
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def test_a_card_refund_and_a_goodwill_credit_read_as_themselves_on_every_page(new_page):
    license = license_with_every_movement()
    MembershipFactory(license=license, user=UserFactory(email=EMAIL))
    purchase_refund = LedgerEntry.objects.for_license(license).get(kind="refund", amount__lt=0)
    card_purchase = purchase_refund.refund_of
    page = new_page()
    _log_in(page)

    # The dashboard explains the balance with every term, the card refund taken away.
    page.goto(_page(license, "overview"))
    line = page.get_by_test_id("balance-bridge").inner_text()
    assert "− $4.000000 refunded to the card" in line, line
    assert "+ $10.000000 credited" in line, line
    recent = page.locator("table.transactions")
    expect(recent.locator(".type--purchase_refund")).to_have_text(
        f"Refund of card purchase #{card_purchase.pk}"
    )
    refund_row = recent.locator("tr", has=page.locator(".type--purchase_refund"))
    expect(refund_row.locator(".tx-amount")).to_have_class(re.compile(r"\bnegative\b"))
    credit_rows = recent.locator("tr", has=page.locator(".type--credit"))
    expect(credit_rows).to_have_count(3)  # the goodwill and two promotional grants
    for index in range(3):
        expect(credit_rows.nth(index).locator(".type--credit")).to_have_text("Credit")
        expect(credit_rows.nth(index).locator(".tx-amount")).to_have_class(
            re.compile(r"\bpositive\b")
        )

    # All transactions: the same words and signs, and the card refund's page from there.
    page.goto(_page(license, "transactions"))
    row = page.locator(f"tr[data-entry='{purchase_refund.pk}']")
    expect(row.locator(".tx-type")).to_have_text(f"Refund of card purchase #{card_purchase.pk}")
    expect(row.locator(".tx-amount")).to_have_class(re.compile(r"\bnegative\b"))
    expect(row.locator(".tx-description")).to_contain_text(f"purchase #{card_purchase.pk}")
    assert "API call" not in row.inner_text()
    row.locator(".tx-date a").click()
    expect(page.get_by_test_id("amount")).to_have_text("-$4.000000")
    expect(page.locator("h1 .type")).to_have_text(f"Refund of card purchase #{card_purchase.pk}")
    expect(page.get_by_test_id("refunded-charge")).to_contain_text(
        f"the card purchase #{card_purchase.pk}"
    )

    # Billing history lists the refund with the purchase it reverses, and the credits.
    page.goto(_page(license, "billing_history"))
    history = page.get_by_test_id("billing-history")
    refund_line = history.locator("tr[data-movement='purchase_refund']")
    expect(refund_line).to_have_count(1)
    expect(refund_line).to_contain_text("Reverses")
    expect(refund_line.locator("td.money")).to_have_text("-$4.000000")
    expect(history.locator("tr[data-movement='credit']")).to_have_count(3)
    expect(history.locator("thead")).to_contain_text("America/New_York")
    assert page.csp_violations == [] and page.bad_responses == []
