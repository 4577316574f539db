"""Reads of a license's credit grants, for the surfaces and the billing team: what is paid
and what promotional of its balance and what expires next (`credit_balances_get`), and a
month's grants, consumption and expiries (`grant_month_get`, `grant_months_of` for every
license at once, `grants_granted_in`, `grants_expired_in`).

Constant in the history's length: the balances come from the open grants (a few rows,
index credit_grant_open), a month's figures from its GrantDailyRollup rows, and what was
outstanding at a month's end is what is left now less what every day since changed."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from django.db import connections
from django.db.models import OuterRef, Q, QuerySet

from accounts.models import License
from billing.models import CreditGrant, GrantDailyRollup, GrantKind
from billing.money import ZERO, quantize_money
from portal.db_router import read_alias
from portal.months import next_month


@dataclass(frozen=True)
class GrantExpiry:
    """What expires next: the remainders of the grants due at the soonest moment."""

    amount: Decimal
    at: datetime


@dataclass(frozen=True)
class CreditBalances:
    """The balance split by where it came from. paid + promotional is the balance when it
    is positive (invariant 13), both zero otherwise."""

    paid: Decimal
    promotional: Decimal
    next_expiry: GrantExpiry | None

    @property
    def total(self) -> Decimal:
        return self.paid + self.promotional


def grants_open(license: License | OuterRef) -> QuerySet[CreditGrant]:
    """The license's grants with something left (index credit_grant_open), in a fixed
    order: `license` may be an OuterRef, for a reader that folds them into its own query
    (the dashboard's basis reads them as parallel arrays)."""
    return CreditGrant.objects.for_license(license).filter(remaining__gt=0).order_by("pk")


def credit_balances_get(license: License) -> CreditBalances:
    """The license's paid and promotional balance, and what expires next (amount and date)."""
    return credit_balances_from(grants_open(license).values_list("kind", "remaining", "expires_at"))


def credit_balances_from(
    grants: Iterable[tuple[str, Decimal, datetime | None]],
) -> CreditBalances:
    """The balances of a license's open grants, given as (kind, remaining, expires_at)."""
    rows = list(grants)
    paid = sum((r for k, r, _ in rows if k == GrantKind.PAID), ZERO)
    promotional = sum((r for k, r, _ in rows if k == GrantKind.PROMOTIONAL), ZERO)
    due = [at for _, _, at in rows if at is not None]
    next_expiry = None
    if due:
        soonest = min(due)
        amount = sum((r for _, r, at in rows if at == soonest), ZERO)
        next_expiry = GrantExpiry(amount=amount, at=soonest)
    return CreditBalances(paid=paid, promotional=promotional, next_expiry=next_expiry)


@dataclass(frozen=True)
class GrantMonth:
    """A month's credit by kind, between local midnights in the license's timezone: paid
    credit sold (purchases), promotional credit granted, consumed by usage (net of usage
    refunds given back), refunded to the card, expired, and what was left at the month's
    end (to date, for the running month): the paid balance outstanding is what is still
    owed to the customer as service."""

    month: date
    paid_sold: Decimal = ZERO
    promotional_granted: Decimal = ZERO
    paid_consumed: Decimal = ZERO
    promotional_consumed: Decimal = ZERO
    paid_refunded: Decimal = ZERO
    paid_expired: Decimal = ZERO
    promotional_expired: Decimal = ZERO
    paid_outstanding: Decimal = ZERO
    promotional_outstanding: Decimal = ZERO


# The GrantMonth figures, in the order the SQL answers them.
GRANT_MONTH_FIGURES = (
    "paid_sold",
    "promotional_granted",
    "paid_consumed",
    "promotional_consumed",
    "paid_refunded",
    "paid_expired",
    "promotional_expired",
    "paid_outstanding",
    "promotional_outstanding",
)

_LEFT = "granted - consumed - refunded - expired"

_MONTH_SQL = f"""
WITH in_month AS (
    SELECT license_id,
           sum(granted) FILTER (WHERE kind = 'paid') AS paid_sold,
           sum(granted) FILTER (WHERE kind = 'promotional') AS promotional_granted,
           sum(consumed) FILTER (WHERE kind = 'paid') AS paid_consumed,
           sum(consumed) FILTER (WHERE kind = 'promotional') AS promotional_consumed,
           sum(refunded) FILTER (WHERE kind = 'paid') AS paid_refunded,
           sum(expired) FILTER (WHERE kind = 'paid') AS paid_expired,
           sum(expired) FILTER (WHERE kind = 'promotional') AS promotional_expired
    FROM billing_grantdailyrollup
    WHERE day >= %(start)s::date AND day < %(end)s::date
      AND (%(license_id)s::bigint IS NULL OR license_id = %(license_id)s::bigint)
    GROUP BY license_id
),
since AS (
    SELECT license_id,
           sum({_LEFT}) FILTER (WHERE kind = 'paid') AS paid,
           sum({_LEFT}) FILTER (WHERE kind = 'promotional') AS promotional
    FROM billing_grantdailyrollup
    WHERE day >= %(end)s::date
      AND (%(license_id)s::bigint IS NULL OR license_id = %(license_id)s::bigint)
    GROUP BY license_id
),
left_now AS (
    SELECT license_id,
           sum(remaining) FILTER (WHERE kind = 'paid') AS paid,
           sum(remaining) FILTER (WHERE kind = 'promotional') AS promotional
    FROM billing_creditgrant
    WHERE remaining > 0
      AND (%(license_id)s::bigint IS NULL OR license_id = %(license_id)s::bigint)
    GROUP BY license_id
),
licenses AS (
    SELECT license_id FROM in_month UNION SELECT license_id FROM since
    UNION SELECT license_id FROM left_now
)
SELECT l.license_id,
       m.paid_sold, m.promotional_granted, m.paid_consumed, m.promotional_consumed,
       m.paid_refunded, m.paid_expired, m.promotional_expired,
       coalesce(left_now.paid, 0) - coalesce(since.paid, 0),
       coalesce(left_now.promotional, 0) - coalesce(since.promotional, 0)
FROM licenses AS l
LEFT JOIN in_month AS m ON m.license_id = l.license_id
LEFT JOIN since ON since.license_id = l.license_id
LEFT JOIN left_now ON left_now.license_id = l.license_id
"""  # noqa: S608


def grant_months_of(*, month: date, license_id: int | None = None) -> dict[int, GrantMonth]:
    """Every license's GrantMonth (or one license's), by license id; a license with no
    grants has none. The month's days are each license's own local days (the rollups')."""
    month = month.replace(day=1)
    params = {
        "start": month.isoformat(),
        "end": next_month(month).isoformat(),
        "license_id": license_id,
    }
    months = {}
    with connections[read_alias(GrantDailyRollup)].cursor() as cursor:
        cursor.execute(_MONTH_SQL, params)
        for license_id_, *figures in cursor.fetchall():
            months[license_id_] = GrantMonth(
                month,
                **{
                    name: quantize_money(value or 0)
                    for name, value in zip(GRANT_MONTH_FIGURES, figures, strict=True)
                },
            )
    return months


def grant_month_get(*, license: License, month: date) -> GrantMonth:
    """The license's credit in a month, by kind (zeros when it has no grants)."""
    month = month.replace(day=1)
    return grant_months_of(month=month, license_id=license.pk).get(license.pk, GrantMonth(month))


def _month_bounds(license: License, month: date) -> tuple[datetime, datetime]:
    tz = license.tzinfo
    month = month.replace(day=1)
    return (
        datetime.combine(month, time(), tzinfo=tz),
        datetime.combine(next_month(month), time(), tzinfo=tz),
    )


def grants_granted_in(*, license: License, month: date) -> list[CreditGrant]:
    """The grants the license received in the month (local midnights), oldest first."""
    start, end = _month_bounds(license, month)
    return list(
        CreditGrant.objects.for_license(license)
        .filter(granted_at__gte=start, granted_at__lt=end)
        .select_related("entry")
        .order_by("granted_at", "id")
    )


def grants_expired_in(*, license: License, month: date) -> list[CreditGrant]:
    """The grants that expired in the month: their expiry entry is in it, or (nothing was
    left of them, no entry) they were due in it."""
    start, end = _month_bounds(license, month)
    return list(
        CreditGrant.objects.for_license(license)
        .filter(
            Q(expiry_entry__occurred_at__gte=start, expiry_entry__occurred_at__lt=end)
            | Q(
                expiry_entry__isnull=True,
                expired_at__isnull=False,
                expires_at__gte=start,
                expires_at__lt=end,
            )
        )
        .select_related("entry", "expiry_entry")
        .order_by("expires_at", "id")
    )
