"""A license's balance bridge (billing.ledger.kinds.Bridge), computed two ways, each in one
place: over its whole life from its stored totals (`bridge_lifetime`), and for a month
between local midnights in its timezone from its daily rollups (`bridge_month`). Every
surface that explains a balance takes its figures from one of them (invariant 13); the
billing team's reconciliation recomputes both from the entries and reports any figure that
differs.

`bridge_month` is constant in the length of the history: the month's movements are the
sums of its daily rollups, the opening balance is today's balance less every rollup from
the month's start on, and the only entries read are the month's stored refunds without a
service, which the rollups keep in one row though they are two movements (purchase refunds
and old goodwill: billing.ledger.kinds), found by the partial index ledger_bare_refunds. One
statement, one snapshot; the cost grows with how long ago the month was (days × kinds),
never with the number of entries."""

from dataclasses import dataclass
from datetime import date

from django.db import connections

from billing.ledger.kinds import (
    MOVEMENTS,
    STORED_REFUND,
    Bridge,
    Movement,
    bare_refunds_sql,
)
from billing.models import DailyRollup, LicenseBalance
from billing.money import ZERO, quantize_money
from portal.db_router import read_alias
from portal.months import next_month


def bridge_lifetime(balance: LicenseBalance) -> Bridge:
    """The license's whole life from its stored totals (one per movement): from nothing to
    its balance now."""
    terms = {m.term: getattr(balance, m.total) for m in MOVEMENTS}
    return Bridge(opening=ZERO, closing=balance.balance, **terms)


def _rollup_part(movement: Movement) -> str:
    """The movement's rows among the daily rollups (keyed by stored kind and service):
    its shapes that do not depend on the amount's sign."""
    shapes = [s for s in movement.shapes if not s.amount_sign]
    return " OR ".join(f"({s.sql()})" for s in shapes) or "false"


def _entry_part(movement: Movement) -> str:
    """Its shapes that do (stored refunds without a service: read from the entries)."""
    shapes = [s for s in movement.shapes if s.amount_sign]
    for shape in shapes:
        if shape.kind != STORED_REFUND:
            raise ValueError(f"{movement.name}: only refunds are told apart by their sign")
    return " OR ".join(f"({s.sql('e')})" for s in shapes) or "false"


_MONTH_SQL = (
    """
WITH bounds AS (
    SELECT (%(start)s::timestamp AT TIME ZONE %(tz)s) AS start_at,
           (%(end)s::timestamp AT TIME ZONE %(tz)s) AS end_at
),
m AS (
    SELECT """
    + ",\n           ".join(
        f"coalesce(sum(amount) FILTER (WHERE {_rollup_part(m)}), 0) AS {m.term}" for m in MOVEMENTS
    )
    + """,
           coalesce(sum(amount), 0) AS amount,
           coalesce(sum(entries), 0) AS entries
    FROM billing_dailyrollup
    WHERE license_id = %(license_id)s AND day >= %(start)s::date AND day < %(end)s::date
),
bare AS (
    SELECT """
    + ",\n           ".join(
        f"coalesce(sum(e.amount) FILTER (WHERE {_entry_part(m)}), 0) AS {m.term}" for m in MOVEMENTS
    )
    + """
    FROM bounds JOIN billing_ledgerentry AS e
        ON e.license_id = %(license_id)s AND """
    + bare_refunds_sql("e")
    + """
        AND e.occurred_at >= bounds.start_at AND e.occurred_at < bounds.end_at
),
after AS (
    SELECT coalesce(sum(amount), 0) AS amount FROM billing_dailyrollup
    WHERE license_id = %(license_id)s AND day >= %(start)s::date
)
SELECT coalesce((SELECT balance FROM billing_licensebalance
                 WHERE license_id = %(license_id)s), 0) - after.amount,
       m.amount, m.entries, """
    + ", ".join(f"{'-' if m.sign < 0 else ''}(m.{m.term} + bare.{m.term})" for m in MOVEMENTS)
    + """
FROM m, bare, after
"""
)


@dataclass(frozen=True)
class MonthBridge:
    month: date  # the first day
    bridge: Bridge
    entries: int  # ledger entries in the month


def bridge_month(*, license_id: int, timezone: str, month: date) -> MonthBridge:
    """The license's month between local midnights in `timezone` (the license's): its
    opening balance, each movement and its closing balance, from the daily rollups."""
    month = month.replace(day=1)
    params: dict[str, int | str] = {
        "license_id": license_id,
        "tz": timezone,
        "start": month.isoformat(),
        "end": next_month(month).isoformat(),
    }
    with connections[read_alias(DailyRollup)].cursor() as cursor:
        cursor.execute(_MONTH_SQL, params)
        opening, amount, entries, *terms = cursor.fetchone()
    bridge = Bridge(
        opening=quantize_money(opening),
        closing=quantize_money(opening + amount),
        **{m.term: quantize_money(t) for m, t in zip(MOVEMENTS, terms, strict=True)},
    )
    return MonthBridge(month=month, bridge=bridge, entries=int(entries))
