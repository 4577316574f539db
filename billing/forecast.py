"""The forecast: how long the balance lasts at the last 30 days' rate, and what it buys at
that mix. From the daily rollups only, so its cost does not grow with the history."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from accounts.models import License
from billing.models import DailyRollup, LedgerEntry, Service
from billing.money import quantize_money


@dataclass(frozen=True)
class Forecast:
    """How long the balance lasts at the last 30 days' rate, and what it buys at that mix."""

    window_days: int
    spent: Decimal  # usage charges in the window
    average_daily: Decimal  # spent / window_days, to 6 places
    days_left: int | None  # None when there is no recent usage
    until: date | None  # the local day the balance runs out (None: no usage, or > 10 years)
    input_tokens: int = 0  # what the balance buys at the recent mix
    cached_tokens: int = 0
    completion_tokens: int = 0
    images: int = 0

    @property
    def has_usage(self) -> bool:
        return self.spent > 0


FORECAST_WINDOW_DAYS = 30
FORECAST_HORIZON_DAYS = 3650  # beyond ten years a date says nothing useful


def forecast_window(today: date) -> tuple[date, date]:
    """The forecast's window: the last 30 local days, today included."""
    return today - timedelta(days=FORECAST_WINDOW_DAYS - 1), today


def forecast_get(license: License, *, balance: Decimal, today: date | None = None) -> Forecast:
    """From the daily rollups of the last 30 local days (today included), never the ledger."""
    today = today or license.local_date()
    start, end = forecast_window(today)
    rows = (
        DailyRollup.objects.for_license(license)
        .filter(kind=LedgerEntry.Kind.USAGE, day__gte=start, day__lte=end)
        .values("service")
        .annotate(amount=Sum("amount"), tokens=Sum("tokens"), images=Sum("images"))
        .order_by()
    )
    return forecast_from(rows, balance=balance, today=today)


def forecast_from(rows: Iterable[Mapping[str, Any]], *, balance: Decimal, today: date) -> Forecast:
    """The forecast from usage rollup sums of the window: rows of service, amount (negative,
    as stored), tokens and images; several rows per service are added up."""
    by_service: dict[str, dict[str, Any]] = {}
    for row in rows:
        acc = by_service.setdefault(
            row["service"], {"amount": Decimal("0"), "tokens": 0, "images": 0}
        )
        acc["amount"] += row["amount"] or 0
        acc["tokens"] += row["tokens"] or 0
        acc["images"] += row["images"] or 0
    spent = -sum((acc["amount"] for acc in by_service.values()), Decimal("0"))
    if spent <= 0:
        return Forecast(FORECAST_WINDOW_DAYS, Decimal("0"), Decimal("0"), None, None)
    average = quantize_money(spent / FORECAST_WINDOW_DAYS)
    days_left = max(0, int((balance / (spent / FORECAST_WINDOW_DAYS)) // 1)) if balance > 0 else 0

    def affordable(service: str, field: str) -> int:
        used = by_service.get(service, {}).get(field) or 0
        if balance <= 0 or not used:
            return 0
        return int((balance * used / spent) // 1)

    return Forecast(
        window_days=FORECAST_WINDOW_DAYS,
        spent=quantize_money(spent),
        average_daily=average,
        days_left=days_left,
        until=today + timedelta(days=days_left) if days_left <= FORECAST_HORIZON_DAYS else None,
        input_tokens=affordable(Service.AI_DATA, "tokens"),
        cached_tokens=affordable(Service.AI_DATA_CACHED, "tokens"),
        completion_tokens=affordable(Service.AI_DATA_COMPLETION, "tokens"),
        images=affordable(Service.AI_IMAGES, "images"),
    )
