"""A license's monthly statements: opening + purchases + credits + refunds − usage = closing,
in its timezone. The figures are billing.statements.figures' (the one statement selector, from
rollups and the balance: constant in the history's length), which the billing team's
reconciliation recomputes from the ledger and reports as a difference if they disagree."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Sum

from accounts.models import License
from billing.models import DailyRollup, LedgerEntry
from billing.statements.figures import MonthFigures, statement_month
from portal.months import next_month

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip


@dataclass(frozen=True)
class ServiceUsage:
    service: str
    amount: Decimal  # spent, positive
    tokens: int
    images: int
    api_calls: int


@dataclass(frozen=True)
class Statement:
    license: License
    month: date
    figures: MonthFigures
    usage_by_service: list[ServiceUsage]
    to_date: bool  # the month is still running

    @property
    def title(self) -> str:
        return f"{MONTHS[self.month.month - 1]} {self.month.year}"

    @property
    def balances(self) -> bool:
        return self.figures.balances


def statement_months(license: License) -> list[date]:
    """Every month from the license's first (member since, or its first entry) to this one,
    newest first."""
    first = license.member_since
    oldest = (
        LedgerEntry.objects.for_license(license)
        .order_by("occurred_at", "id")
        .values_list("occurred_at", flat=True)
        .first()
    )
    if oldest is not None:
        first = min(first, license.local_date(oldest))
    month = first.replace(day=1)
    this_month = license.local_month()
    months = []
    while month <= this_month:
        months.append(month)
        month = next_month(month)
    return months[::-1]


def statement_get(*, license: License, month: date) -> Statement:
    month = month.replace(day=1)
    figures = statement_month(license=license, month=month)
    rows = (
        DailyRollup.objects.for_license(license)
        .filter(kind=LedgerEntry.Kind.USAGE, day__gte=month, day__lt=next_month(month))
        .values("service")
        .annotate(
            amount=Sum("amount"), tokens=Sum("tokens"), images=Sum("images"), calls=Sum("api_calls")
        )
        .order_by("service")
    )
    usage = [
        ServiceUsage(r["service"], -r["amount"], r["tokens"], r["images"], r["calls"]) for r in rows
    ]
    this_month = license.local_month()
    return Statement(license, month, figures, usage, to_date=month >= this_month)
