"""Cards as in Stripe's customer portal: the customer picks the card that pays, removing one
asks first and says what happens to auto top-up, a refused amount saves and charges
nothing, and another license's card is a 404."""

import pytest
from django.urls import reverse

from payments.models import Payment, PaymentAccount, SavedCard
from tests.payments.helpers import save_card

pytestmark = pytest.mark.django_db


def url(name, license, **kwargs):
    return reverse(f"dashboard:{name}", kwargs={"license_id": license.public_id, **kwargs})


def test_the_customer_chooses_which_saved_card_pays(localstripe, client_a, license_a, member_a):
    first = save_card(localstripe, license_a, member_a)
    second = save_card(localstripe, license_a, member_a, "5555555555554444")
    page = client_a.get(url("purchase", license_a)).content.decode()
    # The default is preselected; every saved card and a new one are offered.
    assert f'value="{first.pk}" checked' in page and f'value="{second.pk}">' in page
    assert 'value="new"' in page
    response = client_a.post(url("purchase", license_a), {"preset": "25.00", "card": second.pk})
    assert response.status_code == 302
    [payment] = Payment.objects.all()
    assert payment.card_label == second.label and payment.status == "succeeded"


def test_another_licenses_card_is_a_404(
    localstripe, client_a, license_a, license_b, member_a, member_b
):
    save_card(localstripe, license_a, member_a)
    theirs = save_card(localstripe, license_b, member_b)
    buy = client_a.post(url("purchase", license_a), {"preset": "25.00", "card": theirs.pk})
    assert buy.status_code == 404 and not Payment.objects.exists()
    for action in ("remove", "default"):
        response = client_a.post(url("cards", license_a), {"card": theirs.pk, "action": action})
        assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.removed_at is None and theirs.is_default


def test_removing_a_card_asks_first_and_says_what_auto_top_up_does(
    localstripe, client_a, license_a, member_a
):
    only = save_card(localstripe, license_a, member_a)
    PaymentAccount.objects.filter(license=license_a).update(auto_topup_enabled=True)
    ask = client_a.post(url("cards", license_a), {"card": only.pk, "action": "remove"})
    page = ask.content.decode()
    assert ask.status_code == 200 and "Remove Visa •••• 4242?" in page
    assert "auto top-up has no card to charge" in page
    only.refresh_from_db()
    assert only.removed_at is None
    second = save_card(localstripe, license_a, member_a, "5555555555554444")
    page = client_a.post(
        url("cards", license_a), {"card": only.pk, "action": "remove"}
    ).content.decode()
    assert f"{second.label} becomes the default, and auto top-up charges it" in page
    client_a.post(url("cards", license_a), {"card": only.pk, "action": "remove", "confirm": "yes"})
    only.refresh_from_db()
    second.refresh_from_db()
    assert only.removed_at is not None and second.is_default


@pytest.mark.parametrize("custom", ["1", "12.345", "abc"])
def test_a_refused_amount_saves_no_card_and_starts_no_setup(
    localstripe, client_a, license_a, custom
):
    # The browser asks for a SetupIntent with the whole form: the amount is checked first.
    setup = client_a.post(
        url("card_setup", license_a), {"preset": "custom", "custom_amount": custom}
    )
    assert setup.status_code == 400 and setup.json()["error"]
    account = PaymentAccount.objects.filter(license=license_a).first()
    assert account is None or not account.stripe_customer_id  # Stripe was never asked
    page = client_a.post(
        url("purchase", license_a), {"preset": "custom", "custom_amount": custom, "card": "new"}
    )
    assert page.status_code == 200
    assert not Payment.objects.exists() and not SavedCard.objects.exists()
