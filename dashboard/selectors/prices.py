"""What usage costs at the prices in effect: how much of each service the balance still buys
(the overview's estimates), each price per 1M tokens or 10,000 images (the overview's and
Help's "Cost per usage") and the cached tokens' saving (Help)."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from billing.models import Service
from billing.money import PER_MILLION, PER_TEN_THOUSAND, units_affordable
from dashboard.formatting import format_price


@dataclass(frozen=True)
class Estimate:
    """How much of one service the balance still buys at the price in effect now."""

    service: str
    label: str
    units: int
    unit_name: str
    price_label: str  # "$0.0001 per image", "$0.60 per 1M tokens"
    unit_price: Decimal | None


@dataclass(frozen=True)
class BulkCost:
    service: str
    label: str
    quantity_label: str  # "1M tokens" / "10,000 images"
    cost: Decimal | None  # None when no price is in effect
    unit_price: Decimal | None
    unit_name: str  # "image" / "token"


_ESTIMATES = (
    # service, label, unit name, price shown per
    (Service.AI_IMAGES, "Image searches", "images", "image"),
    (Service.AI_DATA, "AI input tokens", "tokens", "1M tokens"),
    (Service.AI_DATA_COMPLETION, "AI completion tokens", "tokens", "1M tokens"),
    (Service.AI_DATA_CACHED, "AI cached tokens", "tokens", "1M tokens"),
)
_BULK = (
    (Service.AI_IMAGES, "Image processing", "10,000 images", PER_TEN_THOUSAND),
    (Service.AI_DATA, "AI input tokens", "1M tokens", PER_MILLION),
    (Service.AI_DATA_COMPLETION, "AI completion tokens", "1M tokens", PER_MILLION),
    (Service.AI_DATA_CACHED, "AI cached tokens", "1M tokens", PER_MILLION),
)


def bulk_costs(prices: dict[str, Decimal]) -> list[BulkCost]:
    """docs/product.md's "Cost per usage": each price per 1M tokens or per 10,000 images."""
    return [
        BulkCost(
            service=service,
            label=label,
            quantity_label=quantity_label,
            cost=prices[service] * per if service in prices else None,
            unit_price=prices.get(service),
            unit_name="image" if service == Service.AI_IMAGES else "token",
        )
        for service, label, quantity_label, per in _BULK
    ]


def cached_saving_percent(prices: dict[str, Decimal]) -> Decimal | None:
    """How much less a cached token costs than an input token, in percent, at these prices:
    87.5 at the guide's $0.075 and $0.60 per 1M. None if either price is missing or zero."""
    cached, regular = prices.get(Service.AI_DATA_CACHED), prices.get(Service.AI_DATA)
    if cached is None or not regular:
        return None
    saving = (1 - cached / regular) * 100
    return saving.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP).normalize()


def estimates(balance: Decimal, prices: dict[str, Decimal]) -> list[Estimate]:
    estimates = []
    for service, label, unit_name, per in _ESTIMATES:
        unit_price = prices.get(service)
        if unit_price is None:
            price_label = "no price in effect"
        elif per == "image":
            price_label = f"{format_price(unit_price)} per image"
        else:
            price_label = f"{format_price(unit_price * PER_MILLION)} per {per}"
        estimates.append(
            Estimate(
                service=service,
                label=label,
                units=units_affordable(balance, unit_price) if unit_price is not None else 0,
                unit_name=unit_name,
                price_label=price_label,
                unit_price=unit_price,
            )
        )
    return estimates
