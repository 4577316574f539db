"""Reads of a license's money: its balance and totals, and what was refunded of a charge.
Every tenant query goes through `for_license`."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import DateField, F, Sum
from django.db.models.functions import TruncMonth

from accounts.models import License
from accounts.signals import LicenseSummary
from billing.models import DailyRollup, LedgerEntry, LicenseBalance
from billing.money import format_money, quantize_money


def refunded_total_for_entry(entry: LedgerEntry) -> Decimal:
    total = (
        LedgerEntry.objects.for_license(entry.license_id)
        .filter(refund_of=entry)
        .aggregate(total=Sum("amount"))["total"]
    )
    return total or Decimal("0")


def balance_get(license: License) -> LicenseBalance:
    """The license's balance and totals (zeros for a license with no entries yet)."""
    balance = LicenseBalance.objects.for_license(license).first()
    return balance or LicenseBalance(license=license)


def license_summaries(licenses: list[License]) -> dict[int, LicenseSummary]:
    """The license list's balance and low-balance state per license, in one query."""
    balances = {b.license_id: b for b in LicenseBalance.objects.filter(license__in=licenses)}
    summaries = {}
    for license in licenses:
        balance = balances.get(license.pk) or LicenseBalance(license=license)
        if not balance.has_activity:
            state = "new"
        elif balance.warns_low_balance(license.low_balance_threshold):
            state = "low"
        else:
            state = "ok"
        summaries[license.pk] = LicenseSummary(format_money(balance.balance), state)
    return summaries


@dataclass(frozen=True)
class UsageBucket:
    """Usage of one service in one local day or month: spent (positive) and counts."""

    period: date  # the day, or the first day of the month
    service: str
    amount: Decimal
    tokens: int
    images: int
    api_calls: int


def usage_by_period(
    *, license: License, start: date, end: date, granularity: str
) -> list[UsageBucket]:
    """Usage per local day or month and service over [start, end] (local days, inclusive),
    from DailyRollup: the cost follows the range asked for, not the history's length."""
    qs = DailyRollup.objects.for_license(license).filter(
        kind=LedgerEntry.Kind.USAGE, day__gte=start, day__lte=end
    )
    period = TruncMonth("day", output_field=DateField()) if granularity == "month" else F("day")
    rows = (
        qs.annotate(period=period)
        .values("period", "service")
        .annotate(
            amount=Sum("amount"),
            tokens=Sum("tokens"),
            images=Sum("images"),
            calls=Sum("api_calls"),
        )
        .order_by("period", "service")
    )
    return [
        UsageBucket(
            period=row["period"],
            service=row["service"],
            amount=quantize_money(-row["amount"]),
            tokens=row["tokens"],
            images=row["images"],
            api_calls=row["calls"],
        )
        for row in rows
    ]
