"""Ledger test data, always made through the billing services (never raw inserts)."""

import itertools
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from billing.services import UsageRecord, purchase_record, usage_record_batch

_ids = itertools.count(1)


def buy(license, amount, *, at: datetime | None = None, ref: str | None = None):
    return purchase_record(
        license=license,
        amount=Decimal(amount),
        external_id=ref or f"pay-{next(_ids)}",
        occurred_at=at,
    ).entry


def spend_images(license, images: int, *, at: datetime | None = None, record_id: str | None = None):
    """Usage of `images` images ($0.0001 each at the default price)."""
    return usage_record_batch(
        license=license,
        records=[
            UsageRecord(
                id=record_id or f"rec-{next(_ids)}",
                occurred_at=at or timezone.now(),
                images=images,
            )
        ],
    )


def spend(license, dollars, *, at: datetime | None = None):
    """Usage worth exactly `dollars` (a multiple of $0.0001), as images."""
    images = Decimal(dollars) / Decimal("0.0001")
    assert images == images.to_integral_value()
    return spend_images(license, int(images), at=at)
