"""A license's monthly statement for the customer: opening + purchases + refunds − usage =
closing, the month between local midnights in the license's timezone — the figures of
billing.reconciliation.reconciliation_month, read from the daily rollups instead of the
ledger.

Rollups are the sums of the entries of each local day (kept in the posting transaction),
so the month's movements are the sums of its days, and the opening balance is today's
balance less every day's amount from the month's start on. One statement, one snapshot: the
cost grows with how long ago the month was (days × services), never with the number of
entries. reconciliation_month stays the billing team's check of these same figures against
the ledger (tests/api/test_statements.py holds the two equal).
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connections

from accounts.models import License
from billing.models import DailyRollup
from billing.money import quantize_money
from portal.db_router import read_alias


@dataclass(frozen=True)
class Statement:
    month: date  # the first day
    opening: Decimal
    purchases: Decimal
    usage: Decimal  # spent in the month, positive
    refunds: Decimal
    closing: Decimal
    entries: int


def _next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


_STATEMENT_SQL = """
SELECT
    coalesce(b.balance, 0) - coalesce(after.amount, 0) AS opening,
    m.purchases, m.usage, m.refunds, m.amount, m.entries
FROM (SELECT 1) AS one
LEFT JOIN billing_licensebalance AS b ON b.license_id = %(license_id)s
CROSS JOIN (
    SELECT sum(amount) AS amount FROM billing_dailyrollup
    WHERE license_id = %(license_id)s AND day >= %(start)s
) AS after
CROSS JOIN (
    SELECT coalesce(sum(amount) FILTER (WHERE kind = 'purchase'), 0) AS purchases,
           coalesce(-sum(amount) FILTER (WHERE kind = 'usage'), 0) AS usage,
           coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunds,
           coalesce(sum(amount), 0) AS amount,
           coalesce(sum(entries), 0) AS entries
    FROM billing_dailyrollup
    WHERE license_id = %(license_id)s AND day >= %(start)s AND day < %(end)s
) AS m
"""


def statement_month(*, license: License, month: date) -> Statement:
    month = month.replace(day=1)
    with connections[read_alias(DailyRollup)].cursor() as cursor:
        cursor.execute(
            _STATEMENT_SQL,
            {"license_id": license.pk, "start": month, "end": _next_month(month)},
        )
        opening, purchases, usage, refunds, amount, entries = cursor.fetchone()
    return Statement(
        month=month,
        opening=quantize_money(opening),
        purchases=quantize_money(purchases),
        usage=quantize_money(usage),
        refunds=quantize_money(refunds),
        closing=quantize_money(opening + amount),
        entries=int(entries),
    )
