"""The dashboard's numbers, each checked against sums computed here from the ledger rows.

The selector reads totals and daily rollups; these tests recompute every figure from
LedgerEntry with Python's zoneinfo, so a wrong rollup, a UTC day where a local day was
meant, or a month cut at the wrong instant shows up as a mismatch.
"""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

import pytest
import time_machine
from django.template.loader import render_to_string

from billing.models import LedgerEntry, Price
from billing.money import quantize_money
from dashboard.charts import nice_axis
from dashboard.formatting import (
    format_chart_exact,
    format_chart_money,
    format_money_short,
    format_price,
)
from dashboard.selectors.overview import dashboard_get
from tests.accounts.factories import LicenseFactory, UserFactory
from tests.ledger import LedgerFigures, buy, charge, realistic_usage, record, refund


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def assert_matches_ledger(license, now: datetime) -> None:
    expected = LedgerFigures(license, now)
    dash = dashboard_get(license=license)

    assert dash.today == expected.today
    assert dash.balance == expected.balance
    assert dash.total_purchased == expected.total_purchased
    assert dash.total_spent == expected.total_spent
    assert dash.credits_used == expected.total_spent
    # The bridge (billing.ledger.kinds): Total Purchased is gross, card refunds beside it.
    assert (
        dash.bridge.purchase_refunds,
        dash.bridge.credits,
        dash.bridge.usage_refunds,
        dash.bridge.expired,
    ) == (
        expected.total_purchase_refunded,
        expected.total_credited,
        expected.total_refunded,
        expected.total_expired,
    )
    assert dash.net_purchased == dash.total_purchased - expected.total_purchase_refunded
    assert dash.balance == (
        dash.total_purchased
        - expected.total_purchase_refunded
        + expected.total_credited
        + expected.total_refunded
        - dash.total_spent
        - expected.total_expired
    )
    assert dash.bridge.closing == dash.balance and dash.bridge.holds
    assert dash.api_calls == expected.api_calls
    assert dash.tokens == expected.tokens
    assert dash.images == expected.images
    assert dash.total_transactions == expected.transactions
    assert dash.image_spent == expected.image_spent
    assert dash.text_spent == expected.text_spent
    assert dash.image_spent + dash.text_spent == dash.total_spent
    if expected.entries:
        assert dash.average_per_transaction == quantize_money(
            expected.total_spent / expected.transactions
        )

    # Daily: 30 columns, the last one today (local), each day's usage spending.
    days = [bar.start for bar in dash.daily.bars]
    assert days == [expected.today - timedelta(days=n) for n in range(29, -1, -1)]
    for bar in dash.daily.bars:
        assert bar.amount == expected.per_day.get(bar.start, 0), bar.start
        assert bar.label == str(bar.start.day)
        assert bar.weekday == bar.start.strftime("%a")

    # Monthly: 12 months ending with this month (local), each month's usage spending.
    y, m = expected.today.year, expected.today.month
    months = []
    for _ in range(12):
        months.append((y, m))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    months.reverse()
    assert [(bar.start.year, bar.start.month) for bar in dash.monthly.bars] == months
    for bar in dash.monthly.bars:
        assert bar.amount == expected.per_month.get((bar.start.year, bar.start.month), 0)
        assert bar.label == bar.start.strftime("%b %Y")

    # Recent: the newest 100 entries, newest first.
    assert [e.id for e in dash.recent] == [e.id for e in expected.newest[:100]]


@pytest.fixture
def staff(db):
    return UserFactory(email="refunds@portal.example", is_staff=True)


@pytest.mark.django_db
def test_new_york_days_and_months_across_the_autumn_clock_change(staff):
    """DST ends in New York on Sunday Nov 2, 2025 at 06:00 UTC (02:00 EDT -> 01:00 EST)."""
    license = LicenseFactory(timezone="America/New_York")
    now = utc(2025, 11, 20, 15, 0)  # Nov 20, 10:00 EST
    with time_machine.travel(now, tick=False):
        buy(license, "20.00", at=utc(2025, 9, 1, 12))
        oct_31_late = record(utc(2025, 11, 1, 3, 30), input_tokens=100_000)  # Oct 31 23:30 EDT
        nov_1_early = record(utc(2025, 11, 1, 4, 30), completion_tokens=200_000)  # Nov 1 00:30 EDT
        nov_2_edt = record(utc(2025, 11, 2, 5, 30), images=300)  # Nov 2 01:30 EDT
        nov_2_est = record(utc(2025, 11, 2, 6, 30), images=500)  # Nov 2 01:30 EST (again)
        nov_2_late = record(utc(2025, 11, 3, 4, 30), cached_tokens=4_000_000)  # Nov 2 23:30 EST
        nov_3_early = record(utc(2025, 11, 3, 5, 30), input_tokens=50_000)  # Nov 3 00:30 EST
        first_day_out = record(utc(2025, 10, 22, 3, 30), images=7)  # Oct 21 23:30 EDT
        first_day_in = record(utc(2025, 10, 22, 4, 30), images=11)  # Oct 22 00:30 EDT
        first_month_out = record(utc(2024, 12, 1, 4, 30), images=13)  # Nov 30 2024 23:30 EST
        first_month_in = record(utc(2024, 12, 1, 5, 30), images=17)  # Dec 1 2024 00:30 EST
        failed = record(utc(2025, 11, 19, 20), status="error")
        charge(
            license,
            oct_31_late, nov_1_early, nov_2_edt, nov_2_est, nov_2_late, nov_3_early,
            first_day_out, first_day_in, first_month_out, first_month_in, failed,
        )  # fmt: skip
        image_charge = LedgerEntry.objects.for_license(license).get(
            external_id=f"{nov_2_est.id}:ai_images"
        )
        refund(license, image_charge, "0.01", by=staff)

        assert_matches_ledger(license, now)
        dash = dashboard_get(license=license)

    # The data really straddles the boundaries: spell out what lands where.
    daily = {bar.start: bar.amount for bar in dash.daily.bars}
    monthly = {bar.start: bar.amount for bar in dash.monthly.bars}
    assert daily[date(2025, 10, 31)] == Decimal("0.060000")  # 100k input at $0.60/1M
    assert daily[date(2025, 11, 1)] == Decimal("0.200000")
    assert daily[date(2025, 11, 2)] == Decimal("0.380000")  # 300 + 500 images, 4M cached
    assert daily[date(2025, 11, 3)] == Decimal("0.030000")
    assert daily[date(2025, 10, 22)] == Decimal("0.001100")
    assert date(2025, 10, 21) not in daily
    assert monthly[date(2024, 12, 1)] == Decimal("0.001700")
    assert monthly[date(2025, 10, 1)] == Decimal("0.061800")  # Oct 31, 21 and 22
    # The refund returns money but does not shrink the usage bars or Total Spent.
    assert dash.bridge.usage_refunds == Decimal("0.010000")
    assert dash.api_calls == 11


@pytest.mark.django_db
def test_berlin_days_and_months_across_the_spring_clock_change():
    """DST starts in Berlin on Sunday Mar 29, 2026 at 01:00 UTC (02:00 CET -> 03:00 CEST);
    April starts on Mar 31 at 22:00 UTC."""
    license = LicenseFactory(timezone="Europe/Berlin")
    now = utc(2026, 4, 10, 12)
    with time_machine.travel(now, tick=False):
        buy(license, "5.00", at=utc(2026, 1, 5, 9))
        charge(
            license,
            record(utc(2026, 3, 28, 23, 30), images=10),  # Mar 29 00:30 CET
            record(utc(2026, 3, 29, 0, 59), images=20),  # Mar 29 01:59 CET
            record(utc(2026, 3, 29, 1, 0), images=40),  # Mar 29 03:00 CEST
            record(utc(2026, 3, 29, 22, 30), images=80),  # Mar 30 00:30 CEST
            record(utc(2026, 3, 31, 21, 30), input_tokens=1_000_000),  # Mar 31 23:30 CEST
            record(utc(2026, 3, 31, 22, 30), completion_tokens=1_000_000),  # Apr 1 00:30 CEST
        )
        assert_matches_ledger(license, now)
        dash = dashboard_get(license=license)

    daily = {bar.start: bar.amount for bar in dash.daily.bars}
    monthly = {bar.start: bar.amount for bar in dash.monthly.bars}
    assert daily[date(2026, 3, 29)] == Decimal("0.007000")
    assert daily[date(2026, 3, 30)] == Decimal("0.008000")
    assert daily[date(2026, 3, 31)] == Decimal("0.600000")
    assert daily[date(2026, 4, 1)] == Decimal("1.000000")
    assert monthly[date(2026, 3, 1)] == Decimal("0.615000")
    assert monthly[date(2026, 4, 1)] == Decimal("1.000000")


@pytest.mark.django_db
def test_a_year_of_realistic_history_matches_the_ledger(staff):
    license = LicenseFactory(timezone="America/Los_Angeles")
    now = utc(2026, 3, 9, 18)  # the day after the US spring change
    with time_machine.travel(now, tick=False):
        buy(license, "40", at=now - timedelta(days=420))
        buy(license, "60", at=now - timedelta(days=100))
        charge(license, *realistic_usage(now=now, days=420, calls_per_day=3, seed=11))
        some_charge = (
            LedgerEntry.objects.for_license(license).filter(kind="usage", amount__lt=0).first()
        )
        refund(license, some_charge, -some_charge.amount, by=staff)
        assert_matches_ledger(license, now)


@pytest.mark.django_db
def test_a_new_license_shows_zeros_and_empty_charts():
    license = LicenseFactory(timezone="Asia/Tokyo")
    now = utc(2026, 1, 31, 16)  # Feb 1, 01:00 in Tokyo
    with time_machine.travel(now, tick=False):
        dash = dashboard_get(license=license)
    assert dash.today == date(2026, 2, 1)
    assert dash.balance == dash.total_spent == dash.total_purchased == 0
    assert dash.total_transactions == dash.api_calls == dash.tokens == dash.images == 0
    assert dash.average_per_transaction == 0
    assert not dash.has_activity
    assert dash.recent == []
    assert len(dash.daily.bars) == 30 and dash.daily.is_empty
    assert all(bar.amount == 0 and bar.height == 0 for bar in dash.daily.bars)
    assert len(dash.monthly.bars) == 12 and dash.monthly.is_empty
    assert dash.monthly.bars[-1].label == "Feb 2026"
    assert all(estimate.units == 0 for estimate in dash.estimates)
    assert dash.last_updated is None
    # $0.00 is below the default $1.00 threshold: the warning invites a first purchase.
    assert dash.is_low_balance


@pytest.mark.django_db
def test_estimates_are_what_the_balance_buys_at_current_prices():
    license = LicenseFactory()
    buy(license, "10.00", at=utc(2025, 1, 1))
    dash = dashboard_get(license=license)
    prices = {p.service: p.unit_price for p in Price.objects.all()}
    by_service = {e.service: e for e in dash.estimates}
    for service, estimate in by_service.items():
        assert estimate.units == int(
            (Decimal("10") / prices[service]).to_integral_value(rounding=ROUND_FLOOR)
        )
    # docs/product.md's example: a $10.00 balance buys about 100,000 images.
    assert by_service["ai_images"].units == 100_000
    assert by_service["ai_data"].units == 16_666_666
    assert by_service["ai_data_completion"].units == 10_000_000
    assert by_service["ai_data_cached"].units == 133_333_333
    assert by_service["ai_images"].price_label == "$0.0001 per image"
    assert by_service["ai_data_cached"].price_label == "$0.075 per 1M tokens"
    # A service without a price (cost None) is left out, and the comparison below fails.
    costs = {row.service: row.cost for row in dash.bulk_costs if row.cost is not None}
    assert costs == {s: prices[s] * (10_000 if s == "ai_images" else 1_000_000) for s in prices}
    assert format_price(costs["ai_images"]) == "$1.00"
    assert format_price(costs["ai_data"]) == "$0.60"
    assert format_price(costs["ai_data_completion"]) == "$1.00"
    assert format_price(costs["ai_data_cached"]) == "$0.075"


@pytest.mark.django_db
def test_estimates_follow_a_price_change_and_ignore_a_future_one():
    license = LicenseFactory()
    buy(license, "3.00", at=utc(2025, 1, 1))
    now = utc(2026, 2, 1)
    Price.objects.create(service="ai_images", unit_price=Decimal("0.0002"), effective_from=now)
    Price.objects.create(
        service="ai_images", unit_price=Decimal("0.0003"), effective_from=now + timedelta(days=1)
    )
    with time_machine.travel(now + timedelta(hours=1), tick=False):
        dash = dashboard_get(license=license)
    images = next(e for e in dash.estimates if e.service == "ai_images")
    assert images.units == 15_000
    assert next(r for r in dash.bulk_costs if r.service == "ai_images").cost == Decimal("2.0000")


@pytest.mark.django_db
def test_no_estimates_when_the_balance_is_not_positive():
    license = LicenseFactory()
    buy(license, "0.10", at=utc(2025, 1, 1))
    charge(license, record(utc(2025, 1, 2), images=1_500))  # $0.15: usage goes past zero
    dash = dashboard_get(license=license)
    assert dash.balance == Decimal("-0.050000")
    assert [e.units for e in dash.estimates] == [0, 0, 0, 0]
    assert dash.is_low_balance


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("balance", "threshold", "low"),
    [
        ("1.00", "1.00", False),
        ("0.999999", "1.00", True),
        ("4.99", "5.00", True),
        ("5", "5", False),
    ],
)
def test_low_balance_is_strictly_below_the_license_threshold(balance, threshold, low):
    license = LicenseFactory(low_balance_threshold=Decimal(threshold))
    buy(license, balance, at=utc(2025, 1, 1))
    assert dashboard_get(license=license).is_low_balance is low


@pytest.mark.django_db
def test_bar_heights_are_proportional_and_tooltips_read_like_the_guide():
    license = LicenseFactory(timezone="UTC")
    now = utc(2025, 6, 30, 18)
    with time_machine.travel(now, tick=False):
        charge(
            license,
            record(utc(2025, 6, 30, 14, 30), images=12_300),  # $1.23 today
            record(utc(2025, 6, 29, 9), images=4_100),  # $0.41
            record(utc(2025, 6, 28, 9), images=7),  # $0.0007: under a cent, still visible
            record(utc(2025, 5, 2, 9), images=50_000),  # $5.00 in May
        )
        dash = dashboard_get(license=license)
    today, yesterday, before = dash.daily.bars[-1], dash.daily.bars[-2], dash.daily.bars[-3]
    assert today.name == "Jun 30" and today.is_today
    assert today.height == 100  # the largest day fills the chart
    assert yesterday.height == Decimal("33.33")  # 0.41 / 1.23
    assert before.height == 1 and before.amount == Decimal("0.0007")
    assert dash.daily.bars[-4].height == 0 and not dash.daily.bars[-4].has_usage
    may = dash.monthly.bars[-2]
    assert dash.monthly.scale >= may.amount
    assert may.height == (may.amount * 100 / dash.monthly.scale).quantize(Decimal("0.01"))
    # As rendered: labels under the bars and the axis in cents, tooltips exact (issue 28).
    daily = render_to_string("dashboard/sections/daily_chart.html", {"dashboard": dash})
    monthly = render_to_string("dashboard/sections/monthly_chart.html", {"dashboard": dash})
    assert '<span class="bar__tip">Jun 30: $1.23</span>' in daily
    assert '<span class="bar__amount"><span>$0.41</span></span>' in daily
    assert '<span class="bar__tip">Jun 28: $0.0007</span>' in daily
    assert '<span class="bar__amount"><span>&lt;$0.01</span></span>' in daily
    assert '<span class="bar__tip">Jun 2025: $1.6407</span>' in monthly
    assert '<span class="bar__tip">May 2025: $5.00</span>' in monthly
    axis = re.findall(r'dominant-baseline="middle">([^<]*)</text>', monthly)
    assert axis == ["$0.00", "$1.00", "$2.00", "$3.00", "$4.00", "$5.00"]
    assert dash.monthly.bars[0].height == 0  # months without usage are empty, not missing


@pytest.mark.parametrize(
    "peak",
    ["0.0042", "0.5", "1", "1.64", "5", "9.99", "21.96", "99", "100.01", "12345.678901"],
)
def test_the_monthly_axis_covers_the_peak_in_a_few_round_steps(peak):
    peak = Decimal(peak)
    step, steps = nice_axis(peak)
    assert 1 <= steps <= 5
    assert step * steps >= peak
    assert step * (steps - 1) < peak  # no empty step on top
    assert step.normalize().as_tuple().digits in {(1,), (2,), (2, 5), (5,)}


def test_chart_tooltips_give_the_exact_amount_without_trailing_zeros():
    assert format_chart_exact(Decimal("0.004213")) == "$0.004213"
    assert format_chart_exact(Decimal("1.230000")) == "$1.23"
    assert format_chart_exact(Decimal("1.2345")) == "$1.2345"
    assert format_chart_exact(Decimal("0")) == "$0.00"
    assert format_chart_exact(Decimal("1234.567891")) == "$1,234.567891"
    assert format_chart_exact(Decimal("0.1")) == "$0.10"


def test_chart_labels_are_cents_and_less_than_a_cent_says_so():
    assert format_chart_money(Decimal("1.234999")) == "$1.23"
    assert format_chart_money(Decimal("1.235")) == "$1.24"
    assert format_chart_money(Decimal("0.02")) == "$0.02"
    assert format_chart_money(Decimal("0.00646")) == "<$0.01"
    assert format_chart_money(Decimal("0.003849")) == "<$0.01"
    assert format_chart_money(Decimal("0.000001")) == "<$0.01"
    assert format_chart_money(Decimal("0")) == "$0.00"
    assert format_chart_money(Decimal("1234.5")) == "$1,234.50"


@pytest.mark.parametrize("peak", ["0.000001", "0.0042", "0.019", "0.03", "0.07", "0.12"])
def test_an_axis_for_small_spending_steps_in_whole_cents(peak):
    step, steps = nice_axis(Decimal(peak))
    assert step >= Decimal("0.01") and step % Decimal("0.01") == 0
    assert step * steps >= Decimal(peak) and 1 <= steps <= 5


def test_prose_amounts_keep_their_significant_digits_below_a_cent():
    assert format_money_short(Decimal("1.234999")) == "$1.23"
    assert format_money_short(Decimal("1.235")) == "$1.24"
    assert format_money_short(Decimal("1234.5")) == "$1,234.50"
    assert format_money_short(Decimal("0")) == "$0.00"
    assert format_money_short(Decimal("0.0042")) == "$0.0042"
    assert format_money_short(Decimal("0.000001")) == "$0.000001"
    assert format_chart_money(Decimal("0.009999")) == "<$0.01"
    assert format_chart_money(Decimal("0.01")) == "$0.01"


@pytest.mark.django_db
def test_recent_transactions_are_the_newest_100_by_time_then_id():
    license = LicenseFactory()
    at = utc(2025, 3, 1, 12)
    # 105 calls, several sharing one instant: ties are broken by id, newest first.
    charge(license, *[record(at + timedelta(minutes=i // 3), images=1) for i in range(105)])
    dash = dashboard_get(license=license)
    expected = LedgerEntry.objects.for_license(license).order_by("-occurred_at", "-id")[:100]
    assert [e.id for e in dash.recent] == [e.id for e in expected]
    assert len(dash.recent) == 100


@pytest.mark.django_db
def test_total_transactions_counts_ledger_lines_and_api_calls_apart(staff):
    """The guide: Total Transactions counts account activity (purchases, usage and
    refunds), and Average per Transaction is Total Spent ÷ Total Transactions. A transaction
    is a ledger line, as in All transactions and the CSV: a call using three services is
    three transactions and one API call; each purchase, credit and refund is one."""
    from billing.refunds.services import refund_issue

    license = LicenseFactory()
    buy(license, "10")
    charge(
        license,
        record(
            utc(2026, 1, 5, 12),
            input_tokens=1_000_000,
            cached_tokens=1_000_000,
            completion_tokens=1_000_000,
        ),  # $0.60 + $0.075 + $1.00
        record(utc(2026, 1, 5, 13), images=10),  # $0.001
    )
    charged = LedgerEntry.objects.for_license(license).filter(kind="usage")
    assert charged.count() == 4
    refund(license, charged.get(service="ai_data_completion"), "0.5", by=staff)
    refund_issue(
        acting_user=staff,
        license=license,
        amount=Decimal("2"),
        reason="welcome credit",
        idempotency_key="credit-1",
    )
    with time_machine.travel(utc(2026, 1, 6), tick=False):
        dash = dashboard_get(license=license)
        assert_matches_ledger(license, utc(2026, 1, 6))
    # 4 service charges (of 2 calls) + 1 purchase + 1 refund + 1 credit.
    assert dash.total_transactions == 7
    assert dash.api_calls == 2
    assert dash.total_spent == Decimal("1.676000")
    assert dash.average_per_transaction == Decimal("0.239429")  # 1.676 ÷ 7, half-up
    assert dash.average_per_call == Decimal("0.838000")
