"""Usage charges are drafted by the posting statement (billing.ledger.usage.post_usage): each must
be exactly what billing.money.charge_for makes of the same quantity and price (one half-up
rounding to 6 places, then negated), on half-way values and large quantities too."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest

from billing.charges.services import UsageRecord, usage_record_batch
from billing.models import LedgerEntry, Price, Service
from billing.money import MONEY_MAX, charge_for
from portal.exceptions import ApplicationError
from tests.ledger import T0, assert_ledger_consistent

pytestmark = pytest.mark.django_db

# Unit prices (12 places) and quantities (up to usage.services.records.MAX_QUANTITY) whose product
# falls on or next to a half micro-dollar, with the largest counts and the finest prices.
EDGE_PRICES = [
    Decimal("0"),
    Decimal("0.000000000001"),
    Decimal("0.000000000005"),
    Decimal("0.0000005"),
    Decimal("0.0000015"),
    Decimal("0.0000025"),
    Decimal("0.000000499999"),
    Decimal("0.000000500001"),
    Decimal("0.000000075"),
    Decimal("0.000002500000"),
    Decimal("0.123456789012"),
    Decimal("0.999999999999"),
    Decimal("1"),
    Decimal("0.040000000005"),
]
EDGE_QUANTITIES = [1, 2, 3, 5, 7, 499_999, 500_000, 500_001, 999_999, 1_000_001, 10**9, 10**12]


def _cases() -> list[tuple[int, Decimal]]:
    cases = [(q, p) for p in EDGE_PRICES for q in EDGE_QUANTITIES if q * p <= 10**9]
    rng = random.Random(17)
    while len(cases) < 600:
        price = Decimal(rng.randrange(0, 10**12)).scaleb(-12) * rng.choice([1, 10, 1000])
        quantity = rng.choice([rng.randrange(1, 10**6), rng.randrange(1, 10**12)])
        # A price ending in a 5 right after the 6th place times an odd count: a half-way tie.
        if rng.random() < 0.3:
            price = Decimal(rng.randrange(0, 10**6)).scaleb(-6) + Decimal("0.0000005")
            quantity = rng.randrange(1, 10**4) * 2 + 1
        if quantity * price <= 10**9:
            cases.append((quantity, price))
    return cases


def test_each_charge_is_charge_for_of_its_quantity_and_price(license_a):
    # Each case at a moment of its own, with its own price of ai_data and ai_images from
    # that moment on; records charge tokens and images at once (two charges each).
    cases = _cases()
    start = T0 + timedelta(days=1)
    records = []
    for i, (quantity, price) in enumerate(cases):
        at = start + timedelta(seconds=i)
        for service in (Service.AI_DATA, Service.AI_IMAGES):
            Price.objects.create(service=service, unit_price=price, effective_from=at)
        records.append(
            UsageRecord(
                id=f"c{i}",
                occurred_at=at + timedelta(milliseconds=500),
                input_tokens=quantity,
                images=quantity,
            )
        )
    result = usage_record_batch(license=license_a, records=records)
    assert result.records_charged == len(cases)

    entries = {
        (e.external_id, e.service): e.amount
        for e in LedgerEntry.objects.for_license(license_a).filter(kind="usage")
    }
    assert len(entries) == 2 * len(cases)
    for i, (quantity, price) in enumerate(cases):
        expected = -charge_for(quantity, price)
        assert entries[(f"c{i}:ai_data", "ai_data")] == expected, (quantity, price)
        assert entries[(f"c{i}:ai_images", "ai_images")] == expected, (quantity, price)
    assert result.amount == sum((-charge_for(q, p) * 2 for q, p in cases), Decimal(0))
    assert_ledger_consistent(license_a)


def test_a_record_is_charged_at_the_price_in_effect_at_its_time(license_a):
    start = T0 + timedelta(days=1)
    for i, price in enumerate(["0.000001", "0.000002", "0.000003"]):
        Price.objects.create(
            service=Service.AI_DATA_COMPLETION,
            unit_price=Decimal(price),
            effective_from=start + timedelta(hours=i),
        )
    records = [
        UsageRecord(id="just-before", occurred_at=start + timedelta(hours=1, microseconds=-1),
                    completion_tokens=1_000_000),
        UsageRecord(id="at-the-start", occurred_at=start + timedelta(hours=1),
                    completion_tokens=1_000_000),
        UsageRecord(id="latest", occurred_at=start + timedelta(days=3),
                    completion_tokens=1_000_000),
    ]  # fmt: skip
    usage_record_batch(license=license_a, records=records)
    amounts = dict(LedgerEntry.objects.for_license(license_a).values_list("external_id", "amount"))
    assert amounts == {
        "just-before:ai_data_completion": Decimal("-1.000000"),
        "at-the-start:ai_data_completion": Decimal("-2.000000"),
        "latest:ai_data_completion": Decimal("-3.000000"),
    }


def test_a_charge_larger_than_an_entry_holds_is_refused_and_nothing_posts(license_a):
    Price.objects.create(
        service=Service.AI_IMAGES, unit_price=Decimal("100"), effective_from=T0 - timedelta(1)
    )
    records = [
        UsageRecord(id="small", occurred_at=T0, images=1),
        UsageRecord(id="huge", occurred_at=T0, images=10**12),
    ]
    assert MONEY_MAX < 10**12 * 100
    with pytest.raises(ApplicationError, match="more than one entry holds"):
        usage_record_batch(license=license_a, records=records)
    assert not LedgerEntry.objects.for_license(license_a).exists()
