"""The forecast on the dashboard: burn rate, days left and the recent mix, by hand."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from billing.charges.services import UsageRecord, usage_record_batch
from billing.forecast import forecast_get
from dashboard.formatting import format_count_compact
from dashboard.selectors.overview import dashboard_get
from tests.ledger import buy

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def use(license, record_id, when, **quantities):
    usage_record_batch(
        license=license, records=[UsageRecord(id=record_id, occurred_at=when, **quantities)]
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [(950, "950"), (4_200, "4.2 K"), (300_000, "300 K"), (1_234_567, "1.2 M"), (2_000_000, "2 M")],
)
def test_compact_counts_read_like_the_spec(value, text):
    assert format_count_compact(value) == text


def test_dashboard_shows_rate_days_left_and_mix(client_a, license_a):
    buy(license_a, "6.20", at=NOW - timedelta(days=40))
    use(license_a, "a", NOW - timedelta(days=1), images=20_000)  # $2.00
    use(license_a, "b", NOW - timedelta(days=29), input_tokens=1_000_000, completion_tokens=500_000)
    buy(license_a, "3.10", at=NOW - timedelta(hours=1))  # balance back to $6.20
    with time_machine.travel(NOW, tick=False):
        dashboard = dashboard_get(license=license_a)
        page = client_a.get(f"/l/{license_a.public_id}/").content.decode()
    # $3.10 over 30 days is $0.103333 a day; $6.20 lasts 60 days: until Jan 19, 2027.
    assert dashboard.forecast == forecast_get(license_a, balance=Decimal("6.20"), today=NOW.date())
    assert 'Average daily spend: <strong class="money">$0.103333</strong>' in page
    assert "lasts about <strong>60 days</strong> (until Jan 19, 2027)" in page
    assert "≈ 2 M input tokens, 1 M completion tokens and 40 K images at your recent mix." in page


def test_no_recent_usage_says_so(client_a, license_a):
    buy(license_a, "5.00", at=NOW - timedelta(days=90))
    use(license_a, "old", NOW - timedelta(days=45), images=100)
    with time_machine.travel(NOW, tick=False):
        page = client_a.get(f"/l/{license_a.public_id}/").content.decode()
    assert "No recent usage: nothing was spent in the last 30 days." in page


def test_negative_balance_is_already_used_up(client_a, license_a):
    use(license_a, "a", NOW - timedelta(days=2), images=5_000)
    with time_machine.travel(NOW, tick=False):
        page = client_a.get(f"/l/{license_a.public_id}/").content.decode()
    assert "At this rate your balance is already used up." in page
