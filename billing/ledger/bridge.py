"""A license's balance bridge (billing.ledger.kinds.Bridge), computed two ways, each in one
place: over its whole life from its stored totals (`bridge_lifetime`), and for months
between local midnights in its timezone from its daily rollups (`bridge_months`, and
`bridge_month` for one). Every
surface that explains a balance takes its figures from one of them (invariant 13); the
billing team's reconciliation recomputes both from the entries and reports any figure that
differs.

`bridge_months` is constant in the number of entries: a month's movements are the sums of
its daily rollups, its opening balance is today's balance less every rollup from the
month's start on, and the only entries read are the month's stored refunds without a
service, which the rollups keep in one row though they are two movements (purchase refunds
and old goodwill: billing.ledger.kinds), found by the partial index ledger_bare_refunds. One
statement, one snapshot, for one month or all of a license's (the statements list); the
cost grows with how long ago the first month was (days × kinds), never with the number of
entries."""

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


_MONTHS_SQL = (
    """
WITH m AS (
    SELECT date_trunc('month', day)::date AS month, """
    + ",\n           ".join(
        f"sum(amount) FILTER (WHERE {_rollup_part(m)}) AS {m.term}" for m in MOVEMENTS
    )
    + """,
           sum(amount) AS amount,
           sum(entries) AS entries
    FROM billing_dailyrollup
    WHERE license_id = %(license_id)s AND day >= %(first)s::date
    GROUP BY 1
),
bare AS (
    SELECT date_trunc('month', e.occurred_at AT TIME ZONE %(tz)s)::date AS month, """
    + ",\n           ".join(
        f"sum(e.amount) FILTER (WHERE {_entry_part(m)}) AS {m.term}" for m in MOVEMENTS
    )
    + """
    FROM billing_ledgerentry AS e
    WHERE e.license_id = %(license_id)s AND """
    + bare_refunds_sql("e")
    + """
      AND e.occurred_at >= (%(first)s::timestamp AT TIME ZONE %(tz)s)
    GROUP BY 1
),
months AS (
    SELECT gs::date AS month
    FROM generate_series(%(first)s::date, %(last)s::date, interval '1 month') AS gs
),
-- Every rollup from each month's start on, later months included (those after `last` too).
after AS (
    SELECT months.month,
           (SELECT coalesce(sum(m.amount), 0) FROM m WHERE m.month >= months.month) AS amount
    FROM months
)
SELECT months.month,
       coalesce((SELECT balance FROM billing_licensebalance
                 WHERE license_id = %(license_id)s), 0) - after.amount,
       coalesce(m.amount, 0), coalesce(m.entries, 0), """
    + ", ".join(
        f"{'-' if m.sign < 0 else ''}(coalesce(m.{m.term}, 0) + coalesce(bare.{m.term}, 0))"
        for m in MOVEMENTS
    )
    + """
FROM months
JOIN after USING (month)
LEFT JOIN m USING (month)
LEFT JOIN bare USING (month)
ORDER BY months.month
"""
)


@dataclass(frozen=True)
class MonthBridge:
    month: date  # the first day
    bridge: Bridge
    entries: int  # ledger entries in the month


def bridge_months(*, license_id: int, timezone: str, first: date, last: date) -> list[MonthBridge]:
    """Each month from `first` to `last` (oldest first) between local midnights in
    `timezone` (the license's): its opening balance, each movement and its closing
    balance, from the daily rollups; one statement, one snapshot, for any number of months."""
    first, last = first.replace(day=1), last.replace(day=1)
    params: dict[str, int | str] = {
        "license_id": license_id,
        "tz": timezone,
        "first": first.isoformat(),
        "last": last.isoformat(),
    }
    with connections[read_alias(DailyRollup)].cursor() as cursor:
        cursor.execute(_MONTHS_SQL, params)
        rows = cursor.fetchall()
    return [
        MonthBridge(
            month=month,
            bridge=Bridge(
                opening=quantize_money(opening),
                closing=quantize_money(opening + amount),
                **{m.term: quantize_money(t) for m, t in zip(MOVEMENTS, terms, strict=True)},
            ),
            entries=int(entries),
        )
        for month, opening, amount, entries, *terms in rows
    ]


def bridge_month(*, license_id: int, timezone: str, month: date) -> MonthBridge:
    """One month of `bridge_months`."""
    [bridge] = bridge_months(license_id=license_id, timezone=timezone, first=month, last=month)
    return bridge
