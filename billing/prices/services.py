"""Prices added: add-only, a change is a new row from now or later, never an edit, so a
charge can always be explained by the price in effect then."""

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from billing.models import Price, Service
from billing.money import PRICE_MAX_DIGITS, PRICE_PLACES
from portal.exceptions import ApplicationError

logger = logging.getLogger(__name__)


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
