"""One parser for every typed amount (issue 18, finding 5): a decimal comma is refused with
a message that shows how to write the amount, never stored as something else ("0,50" was
recorded as $50, "1,5" as $15, "1.000,50" as $1.0005)."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import License, Membership
from billing.forms import GoodwillForm, PriceForm, PurchaseForm
from billing.models import LedgerEntry
from portal.amounts import parse_amount
from tests.accounts.factories import MembershipFactory
from tests.ledger import buy
from tests.matching import search

AMBIGUOUS = ["0,50", "1,5", "1.000,50", "1,00", "12,3456", "1,000,5", ",50", "1,000.000,5"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,000.50", "1000.50"), ("12,345", "12345"), ("1,234,567.000001", "1234567.000001"),
        ("$0.50", "0.50"), (".5", "0.5"), ("1.5", "1.5"), ("1000.50", "1000.50"),
    ],
)  # fmt: skip
def test_a_comma_is_accepted_only_between_thousands(text, value):
    assert parse_amount(text, places=6) == Decimal(value)


@pytest.mark.parametrize("text", AMBIGUOUS)
def test_a_decimal_comma_is_refused_with_how_to_write_it(text):
    with pytest.raises(ValueError, match=re.escape(f"'{text}' is ambiguous")) as refused:
        parse_amount(text, places=6)
    assert "e.g. 0.50, 1.5 or 1,000.50" in str(refused.value)


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["0,50", "1,5", "1.000,50"])
def test_goodwill_and_purchases_refuse_a_decimal_comma_and_record_nothing(
    billing_client, license_a, text
):
    base = f"/admin/billing/ledgerentry/license/{license_a.pk}"
    goodwill = billing_client.get(f"{base}/goodwill/").content.decode()
    key = search(r'name="idempotency_key" value="([^"]+)"', goodwill)[1]
    for url, data in (
        (f"{base}/goodwill/", {"amount": text, "reason": "outage", "idempotency_key": key}),
        (f"{base}/purchase/", {"amount": text, "external_id": "INV-1"}),
    ):
        response = billing_client.post(url, data)
        assert response.status_code == 200
        [error] = response.context["form"].errors["amount"]
        assert error.startswith(f"'{text}' is ambiguous: write a point for decimals")
        assert "1,000.50" in response.content.decode()  # the example is shown on the page
    assert not LedgerEntry.objects.exists()


def test_every_amount_form_uses_the_one_parser():
    for form in (GoodwillForm, PurchaseForm):
        bound = form(
            data={"amount": "0,50", "reason": "x", "external_id": "x", "idempotency_key": "k" * 10}
        )
        assert not bound.is_valid() and "ambiguous" in bound.errors["amount"][0]
    price = PriceForm(data={"service": "ai_images", "unit_price": "0,0001"})
    assert not price.is_valid() and "ambiguous" in price.errors["unit_price"][0]


@pytest.mark.django_db
def test_the_alert_threshold_refuses_a_decimal_comma(client, license_a):
    owner = MembershipFactory(license=license_a, role=Membership.Role.OWNER)
    client.force_login(owner.user)
    url = reverse("dashboard:alert_settings", kwargs={"license_id": license_a.public_id})
    response = client.post(url, {"low_balance_threshold": "0,50", "extra_emails": ""})
    assert response.status_code == 200
    assert "ambiguous" in response.context["form"].errors["low_balance_threshold"][0]
    assert License.objects.get(pk=license_a.pk).low_balance_threshold == Decimal("1.000000")
    ok = client.post(url, {"low_balance_threshold": "1,000.50", "extra_emails": ""})
    assert ok.status_code == 302
    assert License.objects.get(pk=license_a.pk).low_balance_threshold == Decimal("1000.50")


@pytest.mark.django_db
def test_the_staff_license_form_refuses_a_decimal_comma(root_client, license_a):
    from accounts.admin import LicenseForm

    buy(license_a, "1", "p")
    form = LicenseForm(instance=license_a, data={"low_balance_threshold": "0,50"})
    assert not form.is_valid()
    assert "ambiguous" in form.errors["low_balance_threshold"][0]
