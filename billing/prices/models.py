"""Prices: the unit price of a service from a moment on (add-only)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.ledger.models import Service
from billing.money import (
    PRICE_MAX_DIGITS,
    PRICE_PLACES,
)


class Price(models.Model):
    """The unit price of a service from `effective_from` on.

    Append-only: a price change is a new row. The database refuses UPDATE, and DELETE of
    a price already in effect (see migration 0002).
    """

    service = models.CharField(max_length=32, choices=Service.choices)
    unit_price = models.DecimalField(
        max_digits=PRICE_MAX_DIGITS,
        decimal_places=PRICE_PLACES,
        help_text="Dollars per token, or per image.",
    )
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "effective_from"], name="price_unique_start"
            ),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.unit_price} from {self.effective_from:%Y-%m-%d %H:%M}"
