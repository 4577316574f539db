"""Reads of ledger data. Every tenant query goes through `for_license`."""

import bisect
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from accounts.models import License
from billing.models import DailyRollup, LedgerEntry, LicenseBalance, Price, Service
from billing.money import quantize_money
from portal.exceptions import ApplicationError


class PriceBook:
    """All prices, to look up the one in effect for a service at a moment."""

    def __init__(self, prices):
        self._starts: dict[str, list[datetime]] = {}
        self._prices: dict[str, list[Decimal]] = {}
        for price in sorted(prices, key=lambda p: (p.service, p.effective_from)):
            self._starts.setdefault(price.service, []).append(price.effective_from)
            self._prices.setdefault(price.service, []).append(price.unit_price)

    def unit_price(self, service: str, at: datetime) -> Decimal:
        starts = self._starts.get(service, [])
        i = bisect.bisect_right(starts, at)
        if i == 0:
            raise ApplicationError(f"No price for {service} was in effect at {at.isoformat()}.")
        return self._prices[service][i - 1]


def price_book_get() -> PriceBook:
    return PriceBook(Price.objects.all())


def prices_current(at: datetime | None = None) -> dict[str, Decimal]:
    """The unit price of each service in effect now (services without one are left out)."""
    at = at or timezone.now()
    book = price_book_get()
    current = {}
    for service in Service:
        try:
            current[service.value] = book.unit_price(service, at)
        except ApplicationError:
            continue
    return current


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


@dataclass(frozen=True)
class Forecast:
    """How long the balance lasts at the last 30 days' rate, and what it buys at that mix."""

    window_days: int
    spent: Decimal  # usage charges in the window
    average_daily: Decimal  # spent / window_days, to 6 places
    days_left: int | None  # None when there is no recent usage
    until: date | None  # the local day the balance runs out
    input_tokens: int = 0  # what the balance buys at the recent mix
    cached_tokens: int = 0
    completion_tokens: int = 0
    images: int = 0

    @property
    def has_usage(self) -> bool:
        return self.spent > 0


FORECAST_WINDOW_DAYS = 30


def forecast_get(license: License, *, balance: Decimal, today: date | None = None) -> Forecast:
    """From the daily rollups of the last 30 local days (today included), never the ledger."""
    today = today or timezone.localdate(timezone=license.tzinfo)
    start = today - timedelta(days=FORECAST_WINDOW_DAYS - 1)
    rows = (
        DailyRollup.objects.for_license(license)
        .filter(kind=LedgerEntry.Kind.USAGE, day__gte=start, day__lte=today)
        .values("service")
        .annotate(amount=Sum("amount"), tokens=Sum("tokens"), images=Sum("images"))
    )
    by_service = {row["service"]: row for row in rows}
    spent = -sum((row["amount"] for row in by_service.values()), Decimal("0"))
    if spent <= 0:
        return Forecast(FORECAST_WINDOW_DAYS, Decimal("0"), Decimal("0"), None, None)
    average = quantize_money(spent / FORECAST_WINDOW_DAYS)
    days_left = max(0, int((balance / (spent / FORECAST_WINDOW_DAYS)) // 1)) if balance > 0 else 0

    def affordable(service: str, field: str) -> int:
        used = (by_service.get(service) or {}).get(field) or 0
        if balance <= 0 or not used:
            return 0
        return int((balance * used / spent) // 1)

    return Forecast(
        window_days=FORECAST_WINDOW_DAYS,
        spent=quantize_money(spent),
        average_daily=average,
        days_left=days_left,
        until=today + timedelta(days=days_left),
        input_tokens=affordable(Service.AI_DATA, "tokens"),
        cached_tokens=affordable(Service.AI_DATA_CACHED, "tokens"),
        completion_tokens=affordable(Service.AI_DATA_COMPLETION, "tokens"),
        images=affordable(Service.AI_IMAGES, "images"),
    )
