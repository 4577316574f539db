"""A statement (from the rollups) has exactly the billing team's reconciliation figures."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from billing.month_figures import statement_month
from billing.reconciliation import reconciliation_month
from tests.ledger import buy, spend

pytestmark = pytest.mark.django_db


def test_statement_equals_reconciliation_month_in_the_licenses_timezone(alice_license):
    tz = ZoneInfo(alice_license.timezone)
    may_end = datetime(2025, 6, 1, tzinfo=tz)
    buy(alice_license, "10.00", at=may_end - timedelta(days=3))
    spend(alice_license, "1.20", at=may_end - timedelta(minutes=1))  # May, local time
    spend(alice_license, "0.70", at=may_end + timedelta(minutes=1))  # June, local time
    buy(alice_license, "2.50", at=may_end + timedelta(days=2))
    for month in (datetime(2025, 5, 1).date(), datetime(2025, 6, 1).date()):
        ours = statement_month(license=alice_license, month=month)
        row = reconciliation_month(month=month, license=alice_license).rows[0]
        assert (ours.opening, ours.purchases, ours.usage, ours.refunds, ours.closing) == (
            row.opening,
            row.purchases,
            row.usage,
            row.refunds,
            row.closing,
        )
        assert ours.entries == row.month_entries
