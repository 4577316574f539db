"""Prices: the unit price of each service from a moment on. Add-only: a change is a new
row, never an edit, so a charge can always be explained by the price in effect then."""

import bisect
import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from billing.models import Price, Service
from billing.money import PRICE_MAX_DIGITS, PRICE_PLACES
from portal.exceptions import ApplicationError

logger = logging.getLogger(__name__)


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


def price_validate(
    *, service: str, unit_price: Decimal, effective_from: datetime, now: datetime
) -> None:
    """Raise ApplicationError (naming the field) unless this is a valid new price."""
    if service not in Service.values:
        raise ApplicationError(f"Unknown service {service!r}.", field="service")
    unit_price = Decimal(unit_price)
    if not unit_price.is_finite() or unit_price < 0:
        raise ApplicationError("A price is zero or more.", field="unit_price")
    if unit_price >= Decimal(10) ** (PRICE_MAX_DIGITS - PRICE_PLACES):
        raise ApplicationError("That unit price is too large.", field="unit_price")
    if unit_price != unit_price.quantize(Decimal(1).scaleb(-PRICE_PLACES)):
        raise ApplicationError(
            f"A unit price has at most {PRICE_PLACES} decimal places.", field="unit_price"
        )
    if effective_from < now:
        raise ApplicationError(
            "A new price starts now or later, never in the past.", field="effective_from"
        )
    if Price.objects.filter(service=service, effective_from=effective_from).exists():
        raise ApplicationError(
            "A price for this service already starts at that moment.", field="effective_from"
        )


@transaction.atomic
def price_add(
    *,
    acting_user: User,
    service: str,
    unit_price: Decimal,
    effective_from: datetime | None = None,
) -> Price:
    """Add a price for a service from a moment on (now when not given).

    Prices are never edited: a change is a new row. The moment may not be in the past,
    because usage from before it may already be charged at the old price; a price that
    reached back would charge late-synced records of that period differently.
    """
    if isinstance(unit_price, float):
        raise TypeError("prices must never be floats")
    now = timezone.now()
    effective_from = effective_from or now
    price_validate(service=service, unit_price=unit_price, effective_from=effective_from, now=now)
    unit_price = Decimal(unit_price)
    price = Price.objects.create(
        service=service,
        unit_price=unit_price,
        effective_from=effective_from,
        created_by=acting_user,
    )
    audit_record(
        actor=acting_user,
        action="price.add",
        target=f"price #{price.pk} {service}",
        changes={
            "service": service,
            "unit_price": str(unit_price),
            "effective_from": effective_from.isoformat(),
        },
    )
    logger.info(
        "price added service=%s unit_price=%s from=%s by=%s",
        service,
        unit_price,
        effective_from.isoformat(),
        acting_user.pk,
    )
    return price
