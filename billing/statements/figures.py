"""A license's month as its statement states it: opening + purchases + credits + refunds −
usage = closing, the month between local midnights in the license's timezone. The one
statement selector: the customer's statement page and PDF (billing/statements/selectors.py) and the
API's statements read it, and the billing team's reconciliation (reconciliation_month)
recomputes the same figures from the ledger and reports any statement figure that differs.

Constant in the length of the history: the month's movements are the sums of its daily
rollups (kept in the posting transaction), the opening balance is today's balance less
every rollup from the month's start on, and the only entries read are the month's refunds
without a service (refunds of a card purchase, and goodwill recorded before the "credit"
kind), which the rollups sum together in one row, found by the small partial index
`ledger_bare_refunds`. One statement, one snapshot; the cost grows with how long ago the
month was (days × kinds), never with the number of entries."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connections

from accounts.models import License
from billing.models import DailyRollup
from billing.money import quantize_money
from portal.db_router import read_alias
from portal.months import next_month


@dataclass(frozen=True)
class MonthFigures:
    month: date  # the first day
    opening: Decimal
    purchases: Decimal  # card refunds are not subtracted here: they are refunds (negative)
    credits: Decimal  # goodwill and promotional credit (and goodwill recorded as a refund)
    usage: Decimal  # spent in the month, positive
    refunds: Decimal  # refunds of a charge (+) and of a purchase back to the card (−)
    closing: Decimal
    entries: int

    @property
    def balances(self) -> bool:
        return (
            self.opening + self.purchases + self.credits + self.refunds - self.usage == self.closing
        )


# The names reconciliation_month holds against its own sums from the ledger.
FIGURE_NAMES = ("opening", "purchases", "credits", "usage", "refunds", "closing", "entries")


_MONTH_SQL = """
WITH bounds AS (
    SELECT (%(start)s::timestamp AT TIME ZONE %(tz)s) AS start_at,
           (%(end)s::timestamp AT TIME ZONE %(tz)s) AS end_at
),
m AS (
    SELECT coalesce(sum(amount) FILTER (WHERE kind = 'purchase'), 0) AS purchases,
           coalesce(sum(amount) FILTER (WHERE kind = 'credit'), 0) AS credits,
           coalesce(-sum(amount) FILTER (WHERE kind = 'usage'), 0) AS usage,
           coalesce(sum(amount) FILTER (WHERE kind = 'refund' AND service <> ''), 0)
               AS charge_refunds,
           coalesce(sum(amount), 0) AS amount,
           coalesce(sum(entries), 0) AS entries
    FROM billing_dailyrollup
    WHERE license_id = %(license_id)s AND day >= %(start)s::date AND day < %(end)s::date
),
bare AS (
    SELECT coalesce(sum(e.amount) FILTER (WHERE e.refund_of_id IS NULL), 0) AS goodwill,
           coalesce(sum(e.amount) FILTER (WHERE e.refund_of_id IS NOT NULL), 0) AS card
    FROM bounds JOIN billing_ledgerentry AS e
        ON e.license_id = %(license_id)s AND e.kind = 'refund' AND e.service = ''
        AND e.occurred_at >= bounds.start_at AND e.occurred_at < bounds.end_at
),
after AS (
    SELECT coalesce(sum(amount), 0) AS amount FROM billing_dailyrollup
    WHERE license_id = %(license_id)s AND day >= %(start)s::date
)
SELECT coalesce((SELECT balance FROM billing_licensebalance
                 WHERE license_id = %(license_id)s), 0) - after.amount,
       m.purchases, m.credits + bare.goodwill, m.usage, m.charge_refunds + bare.card,
       m.amount, m.entries
FROM m, bare, after
"""


def month_figures_of(*, license_id: int, timezone: str, month: date) -> MonthFigures:
    """By id and timezone, for the reconciliation's rows (it has no License objects)."""
    month = month.replace(day=1)
    params: dict[str, int | str] = {
        "license_id": license_id,
        "tz": timezone,
        "start": month.isoformat(),
        "end": next_month(month).isoformat(),
    }
    with connections[read_alias(DailyRollup)].cursor() as cursor:
        cursor.execute(_MONTH_SQL, params)
        opening, purchases, credits, usage, refunds, amount, entries = cursor.fetchone()
    return MonthFigures(
        month=month,
        opening=quantize_money(opening),
        purchases=quantize_money(purchases),
        credits=quantize_money(credits),
        usage=quantize_money(usage),
        refunds=quantize_money(refunds),
        closing=quantize_money(opening + amount),
        entries=int(entries),
    )


def statement_month(*, license: License, month: date) -> MonthFigures:
    """The license's month as its statement states it."""
    return month_figures_of(license_id=license.pk, timezone=license.timezone, month=month)
