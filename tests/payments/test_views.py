"""The customer's payment pages: without a Stripe key the old "contact billing" page stays;
with one, the card page under a CSP naming exactly the Stripe.js and API origins; amounts
refused clearly; members see cards but only owners change them; a stranger's receipt is a
404; the admin says when card payments are off."""

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Membership
from payments.models import Payment, SavedCard
from payments.services.paying import payment_start
from portal.moments import format_local_time
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.payments.helpers import save_card

pytestmark = pytest.mark.django_db


def url(name, license, **kwargs):
    return reverse(f"dashboard:{name}", kwargs={"license_id": license.public_id, **kwargs})


def policy(response) -> dict[str, str]:
    return dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )


def test_without_a_stripe_key_purchase_credits_is_the_contact_billing_page(
    client_a, license_a, settings
):
    settings.STRIPE_SECRET_KEY = ""
    response = client_a.get(url("purchase", license_a))
    assert response.status_code == 200
    assert "Write to our billing team" in response.content.decode()
    assert "js.stripe.com" not in response["Content-Security-Policy"]
    # The card pages send the customer back there.
    assert client_a.get(url("cards", license_a))["Location"] == url("purchase", license_a)


def test_the_admin_says_when_card_payments_are_off(admin_client, settings):
    settings.STRIPE_SECRET_KEY = ""
    response = admin_client.get("/admin/payments/payment/")
    assert "Card payments are off: STRIPE_SECRET_KEY is not set" in response.content.decode()


def test_the_card_page_allows_exactly_stripes_origins(localstripe, client_a, license_a):
    response = client_a.get(url("purchase", license_a))
    page = response.content.decode()
    assert response.status_code == 200 and "Pay $25.00" in page
    assert f'src="{localstripe.url}/js.stripe.com/v3/"' in page
    csp = policy(response)
    assert csp["script-src"] == f"'self' {localstripe.url}"
    assert csp["connect-src"] == f"'self' {localstripe.url}"
    # Real Stripe.js opens its card fields and 3-D Secure in frames of these origins.
    assert csp["frame-src"] == " ".join(
        sorted({localstripe.url, "https://hooks.stripe.com", "https://js.stripe.com"})
    )
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    # Other pages keep the strict policy.
    other = policy(client_a.get(url("overview", license_a)))
    assert other["script-src"] == "'self'" and "frame-src" not in other


@pytest.mark.parametrize(
    ("custom", "message"),
    [
        ("", "Enter the amount you want to add."),
        ("abc", "is not an amount."),
        ("2", "Enter an amount from $5.00 to $5,000.00."),
        ("5000.01", "Enter an amount from $5.00 to $5,000.00."),
        ("10.005", "Enter an amount in dollars and whole cents."),
    ],
)
def test_a_bad_custom_amount_is_refused_clearly_and_charges_nothing(
    localstripe, client_a, license_a, member_a, custom, message
):
    save_card(localstripe, license_a, member_a)
    response = client_a.post(
        url("purchase", license_a), {"preset": "custom", "custom_amount": custom}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Payment.objects.exists()


def test_members_see_the_cards_and_only_owners_change_them(
    localstripe, client, license_a, member_a
):
    card = save_card(localstripe, license_a, member_a)
    member = UserFactory(email="mo@alpha.example")
    MembershipFactory(license=license_a, user=member, role=Membership.Role.MEMBER)
    client.force_login(member)
    page = client.get(url("cards", license_a))
    assert "Visa •••• 4242" in page.content.decode() and "Remove" not in page.content.decode()
    client.post(url("cards", license_a), {"card": card.pk, "action": "remove"})
    card.refresh_from_db()
    assert card.removed_at is None
    client.force_login(member_a)  # the owner, who confirms (the first post only asks)
    client.post(url("cards", license_a), {"card": card.pk, "action": "remove", "confirm": "yes"})
    card.refresh_from_db()
    assert card.removed_at is not None
    assert (
        localstripe.api("GET", f"/v1/payment_methods/{card.payment_method_id}")["customer"] is None
    )


def test_a_second_card_can_be_made_the_default(localstripe, client_a, license_a, member_a):
    first = save_card(localstripe, license_a, member_a)
    second = save_card(localstripe, license_a, member_a, "5555555555554444")
    assert first.is_default and not second.is_default
    client_a.post(url("cards", license_a), {"card": second.pk, "action": "default"})
    assert list(SavedCard.objects.filter(is_default=True)) == [second]


def test_receipts_are_the_licenses_own(
    localstripe, client, license_a, license_b, member_a, member_b
):
    save_card(localstripe, license_a, member_a)
    payment = payment_start(license=license_a, acting_user=member_a, amount=Decimal("25"))
    client.force_login(member_a)
    page = client.get(url("receipt", license_a, entry_id=payment.ledger_entry_id))
    assert page.status_code == 200 and payment.receipt_number in page.content.decode()
    # Its time as every page and document gives one: in the license's timezone, saying which.
    payment.refresh_from_db()
    assert payment.credited_at is not None
    when = format_local_time(payment.credited_at, license_a.timezone)
    assert when in page.content.decode()
    pdf = client.get(url("receipt_pdf", license_a, entry_id=payment.ledger_entry_id))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    history = client.get(url("billing_history", license_a)).content.decode()
    assert payment.receipt_number in history
    dashboard = client.get(url("overview", license_a)).content.decode()
    assert url("receipt", license_a, entry_id=payment.ledger_entry_id) in dashboard
    # Bravo's login, even with Alpha's entry id under its own license: 404.
    client.force_login(member_b)
    assert (
        client.get(url("receipt", license_a, entry_id=payment.ledger_entry_id)).status_code == 404
    )
    assert (
        client.get(url("receipt", license_b, entry_id=payment.ledger_entry_id)).status_code == 404
    )
    assert (
        client.get(url("receipt_pdf", license_b, entry_id=payment.ledger_entry_id)).status_code
        == 404
    )
