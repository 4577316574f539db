"""The default prices (docs/product.md), seeded by migration billing.0002 (and restored by tests after a flush)."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

DEFAULT_PRICES_FROM = datetime(2020, 1, 1, tzinfo=UTC)
DEFAULT_UNIT_PRICES = {
    "ai_images": Decimal("0.0001"),  # $0.0001 per image
    "ai_data": Decimal("0.60") / 1_000_000,  # $0.60 per 1M input tokens
    "ai_data_completion": Decimal("1.00") / 1_000_000,  # $1.00 per 1M completion tokens
    "ai_data_cached": Decimal("0.075") / 1_000_000,  # $0.075 per 1M cached tokens
}


def seed_default_prices(price_model: Any) -> None:
    for service, unit_price in DEFAULT_UNIT_PRICES.items():
        price_model.objects.get_or_create(
            service=service,
            effective_from=DEFAULT_PRICES_FROM,
            defaults={"unit_price": unit_price},
        )
