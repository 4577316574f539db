"""Reads of ledger data. Every tenant query goes through `for_license`."""

import bisect
from datetime import datetime
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from accounts.models import License
from billing.models import LedgerEntry, LicenseBalance, Price, Service
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
