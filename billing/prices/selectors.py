"""Prices in effect: the price book (each service's unit price over time) a charge is
priced from, and the prices current now."""

import bisect
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from billing.models import Price, Service
from portal.exceptions import ApplicationError


class PriceBook:
    """All prices, to look up the one in effect for a service at a moment."""

    def __init__(self, prices: Iterable[Price]):
        self._starts: dict[str, list[datetime]] = {}
        self._prices: dict[str, list[Decimal]] = {}
        for price in sorted(prices, key=lambda p: (p.service, p.effective_from)):
            self._starts.setdefault(price.service, []).append(price.effective_from)
            self._prices.setdefault(price.service, []).append(price.unit_price)

    def __eq__(self, other: object) -> bool:
        """The same prices from the same moments (a sync checks the book it drafted with
        is still the one in effect)."""
        if not isinstance(other, PriceBook):
            return NotImplemented
        return (self._starts, self._prices) == (other._starts, other._prices)

    def periods(self) -> dict[str, list]:
        """Each price with the moment it starts and the one the next price of its service
        starts (None: still in effect), as the posting statement takes them (arrays by
        column, billing.ledger.post_usage): the price in effect at a moment is the one
        whose [starts, until) holds it, as unit_price finds it."""
        periods: dict[str, list] = {
            "price_service": [], "price_starts": [], "price_until": [], "price_unit": []
        }  # fmt: skip
        for service, starts in self._starts.items():
            for i, start in enumerate(starts):
                periods["price_service"].append(service)
                periods["price_starts"].append(start)
                periods["price_until"].append(starts[i + 1] if i + 1 < len(starts) else None)
                periods["price_unit"].append(self._prices[service][i])
        return periods

    def largest(self) -> Decimal:
        """The largest unit price of any service at any moment (0 without prices)."""
        return max((p for prices in self._prices.values() for p in prices), default=Decimal(0))

    def unit_price(self, service: str, at: datetime) -> Decimal:
        starts = self._starts.get(service, [])
        i = bisect.bisect_right(starts, at)
        if i == 0:
            raise ApplicationError(f"No price for {service} was in effect at {at.isoformat()}.")
        return self._prices[service][i - 1]


def price_book_get() -> PriceBook:
    return PriceBook(Price.objects.all())


def prices_in_effect(at: datetime) -> QuerySet[Price]:
    """The price of each service in effect at `at`: its latest start at or before `at` (the
    row PriceBook.unit_price picks; starts are unique per service), as a queryset ordered by
    service, so a reader can fold it into a query of its own (the dashboard's basis)."""
    return (
        Price.objects.filter(service__in=Service.values, effective_from__lte=at)
        .order_by("service", "-effective_from")
        .distinct("service")
    )


def prices_by_service(pairs: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """(service, unit price) pairs as prices_current gives them: in the order of Service."""
    found = dict(pairs)
    return {service.value: found[service.value] for service in Service if service.value in found}


def prices_current(at: datetime | None = None) -> dict[str, Decimal]:
    """The unit price of each service in effect now (services without one are left out)."""
    at = at or timezone.now()
    return prices_by_service(prices_in_effect(at).values_list("service", "unit_price"))
