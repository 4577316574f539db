"""The balance forecast, checked against hand computations."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.charges.services import UsageRecord, usage_record_batch
from billing.forecast import forecast_get

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")
TODAY = date(2026, 11, 20)


def use(license, record_id, when, **quantities):
    usage_record_batch(
        license=license, records=[UsageRecord(id=record_id, occurred_at=when, **quantities)]
    )


def test_no_usage_means_no_forecast(license_a):
    forecast = forecast_get(license_a, balance=Decimal("10"), today=TODAY)
    assert not forecast.has_usage
    assert forecast.days_left is None and forecast.until is None


def test_rate_days_left_and_mix_by_hand(license_a):
    license_a.timezone = "America/New_York"
    license_a.save()
    # In the window (Oct 22 .. Nov 20, New York days):
    use(license_a, "a", datetime(2026, 11, 19, 12, tzinfo=NY), images=20_000)  # $2.00
    use(
        license_a,
        "b",
        datetime(2026, 10, 22, 0, 30, tzinfo=NY),
        input_tokens=1_000_000,
        completion_tokens=500_000,
    )  # fmt: skip  $0.60 + $0.50
    # Outside: 23:30 on Oct 21 in New York is Oct 22 in UTC, still before the window.
    use(license_a, "c", datetime(2026, 10, 21, 23, 30, tzinfo=NY), images=90_000)
    forecast = forecast_get(license_a, balance=Decimal("6.20"), today=TODAY)
    # spent $3.10 over 30 days: $0.103333... a day; $6.20 lasts 60 days.
    assert forecast.spent == Decimal("3.100000")
    assert forecast.average_daily == Decimal("0.103333")
    assert forecast.days_left == 60
    assert forecast.until == TODAY + timedelta(days=60)
    # The balance is 2x what was spent: at that mix it buys 2x each quantity.
    assert (forecast.images, forecast.input_tokens, forecast.completion_tokens) == (
        40_000,
        2_000_000,
        1_000_000,
    )
    assert forecast.cached_tokens == 0


def test_negative_balance_lasts_zero_days_and_buys_nothing(license_a):
    use(license_a, "a", datetime(2026, 11, 19, 12, tzinfo=ZoneInfo("UTC")), images=10_000)
    forecast = forecast_get(license_a, balance=Decimal("-0.50"), today=TODAY)
    assert forecast.has_usage
    assert forecast.days_left == 0
    assert forecast.until == TODAY
    assert forecast.images == 0
