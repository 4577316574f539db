"""Amounts too big for the money columns are refused by the portal, with a message that
names the field and the maximum, before the database would refuse them with a 500
(issue 18: a credit large enough to overflow the balance column answered 500)."""

from decimal import Decimal

import pytest

from billing.models import LedgerEntry
from billing.money import MONEY_MAX, format_money
from billing.purchases.services import purchase_record
from billing.refunds.services import refund_issue
from portal.exceptions import ApplicationError
from tests.ledger import assert_ledger_consistent, buy, ledger_sums, record
from tests.matching import search

pytestmark = pytest.mark.django_db

ADMIN = "/admin/billing/ledgerentry"


@pytest.fixture
def nearly_full(license_a):
    """A license whose balance is a dollar short of the most the column holds."""
    buy(license_a, MONEY_MAX - Decimal(1), "pay-huge")
    return license_a


def form_key(response):
    return search(r'name="idempotency_key" value="([^"]+)"', response.content.decode()).group(1)


def test_a_purchase_that_would_overflow_the_balance_is_refused_by_name(
    billing_client, nearly_full, settings
):
    settings.CREDIT_APPROVAL_LIMIT = MONEY_MAX  # this test is about the column, not approval
    response = billing_client.post(
        f"{ADMIN}/license/{nearly_full.pk}/purchase/",
        {"amount": "5", "external_id": "INV-1", "description": ""},
    )
    assert response.status_code == 200
    error = " ".join(response.context["form"].errors["amount"])
    assert "balance" in error and format_money(MONEY_MAX) in error
    assert LedgerEntry.objects.count() == 1
    assert_ledger_consistent(nearly_full)


def test_a_goodwill_credit_that_would_overflow_the_balance_is_refused_by_name(
    billing_client, nearly_full, settings
):
    settings.CREDIT_APPROVAL_LIMIT = MONEY_MAX
    url = f"{ADMIN}/license/{nearly_full.pk}/goodwill/"
    response = billing_client.post(
        url,
        {"amount": "5", "reason": "sorry", "idempotency_key": form_key(billing_client.get(url))},
    )
    assert response.status_code == 200
    error = " ".join(response.context["form"].errors["amount"])
    assert "balance" in error and format_money(MONEY_MAX) in error
    assert LedgerEntry.objects.count() == 1


def test_every_money_flow_checks_the_totals_before_the_database(nearly_full, billing_user):
    with pytest.raises(ApplicationError) as refused:
        purchase_record(license=nearly_full, amount=Decimal(2), external_id="pay-over")
    assert refused.value.field == "amount"
    assert "the balance" in refused.value.message
    with pytest.raises(ApplicationError):
        refund_issue(
            acting_user=billing_user,
            license=nearly_full,
            amount=Decimal(2),
            reason="goodwill",
            idempotency_key="goodwill-over",
        )
    # Exactly up to the maximum is fine: the column holds it.
    purchase_record(license=nearly_full, amount=Decimal(1), external_id="pay-last-dollar")
    assert ledger_sums(nearly_full)["balance"] == MONEY_MAX
    assert_ledger_consistent(nearly_full)


def test_usage_that_would_overflow_the_spending_total_is_refused_not_a_500(license_a):
    from tests.ledger import T0, charge

    huge = 9_000_000_000_000_000_000  # tokens: a bigint, but $5.4 trillion at $0.60 per 1M
    with pytest.raises(ApplicationError) as refused:
        charge(license_a, record(T0, input_tokens=huge))
    assert refused.value.field == "amount"
    assert not LedgerEntry.objects.exists()
