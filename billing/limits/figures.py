"""The one reading of what a license may still spend through the gate: its balance, what
the gate holds for it now, its usage this local month and its limits, in one statement
(one snapshot). The gate decides from it (under the license's spend-limit row lock) and
the Spend limits page and the console show it, so both say the same.

Available credit = balance − held − floor; with a monthly cap, also at most
cap − this month's usage − held. Usage this month is the month's usage rollups (by the
license's local days, kept exact with the ledger in the posting transaction): gross, so a
refund does not reopen the cap."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import connection

from billing.ledger.models import LedgerEntry
from billing.money import ZERO

# Reason codes of a refusal for a limit (the gate's others are in billing.limits.gate).
BALANCE_EXHAUSTED = "balance_exhausted"
MONTHLY_CAP_REACHED = "monthly_cap_reached"

_FIGURES_SQL = f"""
SELECT coalesce(b.balance, 0), coalesce(h.held, 0), coalesce(h.holds, 0),
       coalesce(-m.used, 0), coalesce(s.floor, 0), coalesce(s.overdraft_approved, 0),
       s.monthly_cap,
       d.allowed, d.reason, d.estimate, d.available, d.decided_at, d.expires_at
FROM (SELECT %(license)s::bigint AS id) AS l
LEFT JOIN billing_licensebalance AS b ON b.license_id = l.id
LEFT JOIN billing_spendlimit AS s ON s.license_id = l.id
LEFT JOIN LATERAL (
    SELECT sum(g.estimate) AS held, count(*) AS holds FROM billing_gatehold AS g
    WHERE g.license_id = l.id AND g.allowed AND g.released_at IS NULL
      AND g.expires_at > %(now)s
) AS h ON true
LEFT JOIN LATERAL (
    SELECT sum(r.amount) AS used FROM billing_dailyrollup AS r
    WHERE r.license_id = l.id AND r.kind = '{LedgerEntry.Kind.USAGE.value}'
      AND r.day >= %(month)s
) AS m ON true
LEFT JOIN billing_gatehold AS d ON d.license_id = l.id AND d.request_id = %(request_id)s
"""  # noqa: S608 (module constants only; every value is a bound parameter)


@dataclass(frozen=True)
class Answer:
    """An answer the gate gave before, for the same request id."""

    allowed: bool
    reason: str
    estimate: Decimal
    available: Decimal
    decided_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class CreditFigures:
    as_of: datetime
    balance: Decimal
    held: Decimal  # the open holds' estimates added up
    holds: int  # how many holds are open
    month_used: Decimal  # usage in the license's local month (positive)
    floor: Decimal
    overdraft_approved: Decimal
    monthly_cap: Decimal | None
    answered: Answer | None = None

    @property
    def credit_room(self) -> Decimal:
        """What may still be held above the floor (negative: past it already)."""
        return self.balance - self.held - self.floor

    @property
    def cap_room(self) -> Decimal | None:
        """What may still be held within the monthly cap (None: no cap)."""
        if self.monthly_cap is None:
            return None
        return self.monthly_cap - self.month_used - self.held

    @property
    def available(self) -> Decimal:
        """The most one more authorization could be allowed now (never below zero)."""
        rooms = [self.credit_room]
        if self.cap_room is not None:
            rooms.append(self.cap_room)
        return max(min(rooms), ZERO)

    def refusal(self, estimate: Decimal) -> str | None:
        """Which limit an estimate would pass (the floor first), or None."""
        if estimate > self.credit_room:
            return BALANCE_EXHAUSTED
        cap_room = self.cap_room
        if cap_room is not None and estimate > cap_room:
            return MONTHLY_CAP_REACHED
        return None

    def holding(self, estimate: Decimal) -> "CreditFigures":
        """The figures once `estimate` is held too."""
        return CreditFigures(
            as_of=self.as_of,
            balance=self.balance,
            held=self.held + estimate,
            holds=self.holds + 1,
            month_used=self.month_used,
            floor=self.floor,
            overdraft_approved=self.overdraft_approved,
            monthly_cap=self.monthly_cap,
        )


def credit_figures_read(
    *, license_id: int, now: datetime, month: date, request_id: str | None = None
) -> CreditFigures:
    """The figures of a license at `now` (its local month starting on `month`), and the
    answer already given to `request_id`, if any. One statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            _FIGURES_SQL,
            {"license": license_id, "now": now, "month": month, "request_id": request_id},
        )
        row = cursor.fetchone()
    balance, held, holds, used, floor, overdraft, cap, *answer = row
    return CreditFigures(
        as_of=now,
        balance=balance,
        held=held,
        holds=holds,
        month_used=used,
        floor=floor,
        overdraft_approved=overdraft,
        monthly_cap=cap,
        answered=Answer(*answer) if answer[0] is not None else None,
    )
