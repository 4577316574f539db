"""Rounding: a usage charge is quantity × the unit price, rounded half-up to the
micro-dollar once per charge, when it is recorded. Amounts a person types are never rounded."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billing.models import Price
from billing.money import charge_for, money_exact, parse_money, quantize_money
from tests.ledger import T0, record_usage, usage_entry

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("quantities", "service", "amount"),
    [
        ({"input_tokens": 1234}, "ai_data", "-0.000740"),  # 0.0007404 → down
        ({"cached_tokens": 5}, "ai_data_cached", "0.000000"),  # 0.000000375 → 0
        ({"cached_tokens": 60}, "ai_data_cached", "-0.000005"),  # 0.0000045 → half-up
        ({"cached_tokens": 59}, "ai_data_cached", "-0.000004"),  # 0.000004425
        ({"cached_tokens": 20}, "ai_data_cached", "-0.000002"),  # 0.0000015 → half-up
        ({"completion_tokens": 1_000_000}, "ai_data_completion", "-1.000000"),
        ({"input_tokens": 1_000_000}, "ai_data", "-0.600000"),
        ({"cached_tokens": 1_000_000}, "ai_data_cached", "-0.075000"),
        ({"images": 3}, "ai_images", "-0.000300"),
    ],
)
def test_usage_charge_is_rounded_half_up_once(license_a, quantities, service, amount):
    record_usage(license_a, "r1", **quantities)
    entry = usage_entry(license_a, "r1", service)
    assert entry.amount == Decimal(amount)
    assert str(entry.amount) == str(Decimal(amount))  # six places exactly, as shown
    license_a.balance.refresh_from_db()
    assert license_a.balance.balance == Decimal(amount)


def test_the_half_micro_dollar_boundary_goes_up_per_charge_not_per_sum(license_a):
    """With a price of $0.0000005 per token, one token is exactly half a micro-dollar:
    each charge rounds up to $0.000001, so two one-token calls cost $0.000002 (rounding
    the sum instead would give $0.000001)."""
    Price.objects.create(
        service="ai_data", unit_price=Decimal("0.0000005"), effective_from=T0 - timedelta(days=1)
    )
    record_usage(license_a, "a", input_tokens=1)
    record_usage(license_a, "b", input_tokens=1)
    assert usage_entry(license_a, "a").amount == Decimal("-0.000001")
    license_a.balance.refresh_from_db()
    assert license_a.balance.balance == Decimal("-0.000002")


def test_charge_for_and_quantize_money():
    per_token = Decimal("0.60") / 1_000_000
    assert charge_for(1234, per_token) == Decimal("0.000740")
    assert charge_for(0, per_token) == Decimal("0.000000")
    assert quantize_money(Decimal("0.0000025")) == Decimal("0.000003")
    assert quantize_money(Decimal("-0.0000025")) == Decimal("-0.000003")  # half away from 0
    with pytest.raises(TypeError):
        # mypy refuses a float here already; this checks that the function refuses one at
        # run time too, so the call is wrong on purpose.
        quantize_money(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "value"),
    [("12.5", "12.500000"), ("$1,000.00", "1000.000000"), (" 0.000001 ", "0.000001")],
)
def test_parse_money_accepts_what_people_type(text, value):
    assert parse_money(text) == Decimal(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.0000004", "at most 6 decimal places"),
        ("abc", "not an amount"),
        ("NaN", "not an amount"),
        ("1e400", "at most"),
        ("", "not an amount"),
    ],
)
def test_parse_money_refuses_rather_than_rounds(text, message):
    with pytest.raises(ValueError, match=message):
        parse_money(text)


def test_money_exact_never_rounds_and_never_takes_floats():
    assert money_exact(Decimal("2.5")) == Decimal("2.500000")
    with pytest.raises(ValueError, match="6 decimal places"):
        money_exact(Decimal("0.0000001"))
    with pytest.raises(TypeError):
        money_exact(2.5)  # type: ignore[arg-type]  # refused at run time too (see above)
