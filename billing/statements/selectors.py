"""A license's monthly statements, in its timezone: the month's balance bridge (opening +
purchases − purchase refunds + credits + usage refunds − usage − expired = closing), its
usage by service with the calls counted per service (billing.ledger.usage.calls_per_service),
and its credit grants: granted, consumed, expired. The figures are billing.statements.figures'
(the one statement selector, from rollups and the balance: constant in the history's
length), which the billing team's reconciliation recomputes from the ledger and reports as a
difference if they disagree."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Sum

from accounts.models import License
from billing.credits.selectors import (
    GrantMonth,
    grant_month_get,
    grants_expired_in,
    grants_granted_in,
)
from billing.history.types import term_title
from billing.ledger.kinds import MOVEMENTS, Bridge, Movement
from billing.ledger.models import OLDEST_FIRST
from billing.ledger.usage import calls_per_service
from billing.models import CreditGrant, DailyRollup, LedgerEntry
from billing.money import ZERO
from billing.statements.figures import MonthFigures, statement_month, statement_months_figures
from portal.months import next_month
from portal.plans import rows_in_index_order

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip


@dataclass(frozen=True)
class ServiceUsage:
    service: str
    amount: Decimal  # spent, positive
    tokens: int
    images: int
    api_calls: int  # calls counted under this service (an image call is an ai_images call)
    entries: int  # transactions (ledger lines): one per service a call used


@dataclass(frozen=True)
class BridgeLine:
    """One line of the month's bridge: "− Purchase refunds $4.000000"."""

    movement: Movement
    title: str  # from the movement's term: "Purchase refunds"
    sign: str  # "+" or "−"
    amount: Decimal  # the size (≥ 0)


def bridge_lines(bridge: Bridge | None = None) -> list[BridgeLine]:
    """The bridge between opening and closing, each movement on its own line, in the
    bridge's order (without a bridge: the words alone, amounts 0)."""
    return [
        BridgeLine(m, term_title(m), "+" if m.sign > 0 else "−", getattr(bridge, m.term, ZERO))
        for m in MOVEMENTS
    ]


@dataclass(frozen=True)
class Statement:
    license: License
    month: date
    figures: MonthFigures
    usage_by_service: list[ServiceUsage]
    to_date: bool  # the month is still running
    grants: GrantMonth
    granted: list[CreditGrant]  # the credit grants received in the month
    expired: list[CreditGrant]  # the grants that expired in the month

    @property
    def title(self) -> str:
        return f"{MONTHS[self.month.month - 1]} {self.month.year}"

    @property
    def balances(self) -> bool:
        return self.figures.balances

    @property
    def lines(self) -> list[BridgeLine]:
        return bridge_lines(self.figures.bridge)

    @property
    def api_calls(self) -> int:
        return sum(s.api_calls for s in self.usage_by_service)

    @property
    def usage_entries(self) -> int:
        return sum(s.entries for s in self.usage_by_service)


def statement_months(license: License) -> list[date]:
    """Every month from the license's first (member since, or its first entry) to this one,
    newest first."""
    first = license.member_since
    oldest = rows_in_index_order(
        LedgerEntry.objects.history_of(license)
        .order_by(*OLDEST_FIRST)
        .values_list("occurred_at")[:1]
    )
    if oldest:
        first = min(first, license.local_date(oldest[0][0]))
    month = first.replace(day=1)
    this_month = license.local_month()
    months = []
    while month <= this_month:
        months.append(month)
        month = next_month(month)
    return months[::-1]


@dataclass(frozen=True)
class StatementYear:
    """A year of the statements list: its months, newest first, each with its figures."""

    year: int
    months: list[MonthFigures]


def statement_years(license: License) -> list[StatementYear]:
    """Every statement month with its opening and closing (the statement's own figures,
    billing.statements.figures), grouped by year, newest first: one statement for all."""
    months = statement_months(license)
    years: dict[int, list[MonthFigures]] = {}
    for figures in reversed(
        statement_months_figures(license=license, first=months[-1], last=months[0])
    ):
        years.setdefault(figures.month.year, []).append(figures)
    return [StatementYear(year, months) for year, months in years.items()]


def statement_get(*, license: License, month: date) -> Statement:
    month = month.replace(day=1)
    figures = statement_month(license=license, month=month)
    rows = (
        DailyRollup.objects.for_license(license)
        .filter(kind=LedgerEntry.Kind.USAGE, day__gte=month, day__lt=next_month(month))
        .values("service")
        .annotate(
            amount=Sum("amount"),
            tokens=Sum("tokens"),
            images=Sum("images"),
            calls=Sum("api_calls"),
            entries=Sum("entries"),
        )
        .order_by("service")
    )
    sums = {r["service"]: r for r in rows}
    calls = calls_per_service({s: (r["calls"], r["entries"]) for s, r in sums.items()})
    usage = [
        ServiceUsage(
            service,
            -sums[service]["amount"] if service in sums else ZERO,
            sums[service]["tokens"] if service in sums else 0,
            sums[service]["images"] if service in sums else 0,
            calls[service],
            sums[service]["entries"] if service in sums else 0,
        )
        for service in sorted(calls)
    ]
    return Statement(
        license,
        month,
        figures,
        usage,
        to_date=month >= license.local_month(),
        grants=grant_month_get(license=license, month=month),
        granted=grants_granted_in(license=license, month=month),
        expired=grants_expired_in(license=license, month=month),
    )
