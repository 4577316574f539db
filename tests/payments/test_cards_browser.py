"""Managing cards in a real browser (Chromium, Playwright) against localstripe: alice adds
a card without buying (empty fields say so in the form; a 4-digit expiry year works), the
first card becomes the default, she pays with her second card, and removing a card asks
first on a page naming it."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from payments.models import Payment, SavedCard
from tests.payments.test_payments_browser import log_in, shop  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def type_card(page, number: str, year: str) -> None:
    page.get_by_placeholder("number").fill(number)
    page.get_by_placeholder("exp_month").fill("12")
    page.get_by_placeholder("exp_year").fill(year)
    page.get_by_placeholder("cvc").fill("123")
    page.get_by_placeholder("postal_code").fill("10001")


def test_alice_adds_two_cards_pays_with_the_second_and_removes_the_first(new_page, shop):  # noqa: F811
    acme, _globex = shop
    page = new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, "alice@acme.example")
    cards_path = reverse("dashboard:cards", kwargs={"license_id": acme.public_id})
    page.goto(cards_path)
    # Empty card fields: a message in the form, not a JavaScript error.
    page.get_by_role("button", name="Save card").click()
    expect(page.locator("[data-payment-error]")).to_have_text(
        "Enter the card's number, expiry date and security code."
    )
    assert errors == [] and not SavedCard.objects.exists()
    type_card(page, "4242424242424242", "2030")  # 12/2030: a 4-digit year
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_text("Visa •••• 4242 (default)")).to_be_visible(timeout=15_000)
    type_card(page, "5555555555554444", "31")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("button", name="Remove Visa •••• 4444")).to_be_visible(timeout=15_000)
    first = SavedCard.objects.get(last4="4242")
    assert first.is_default and first.exp_year == 2030
    # Checkout: the default is preselected; she picks the second card.
    page.goto(reverse("dashboard:purchase", kwargs={"license_id": acme.public_id}))
    expect(page.get_by_label("Visa •••• 4242")).to_be_checked()
    page.get_by_label("Visa •••• 4444").check()
    page.get_by_role("button", name="Pay $25.00").click()
    expect(page.get_by_text("Payment received")).to_be_visible(timeout=15_000)
    [payment] = Payment.objects.for_license(acme)
    assert payment.card_last4 == "4444"
    # Removing asks first, naming the card; the other one becomes the default.
    page.goto(cards_path)
    page.get_by_role("button", name="Remove Visa •••• 4242").click()
    expect(page.get_by_role("heading", name="Remove Visa •••• 4242?")).to_be_visible()
    assert SavedCard.objects.get(pk=first.pk).removed_at is None
    page.get_by_role("button", name="Yes, remove Visa •••• 4242").click()
    expect(page.get_by_text("Visa •••• 4444 (default)")).to_be_visible()
    assert errors == [] and page.csp_violations == []
