"""Filters for the customer pages: the same digits the ledger and the CSV hold."""

from decimal import Decimal

from django import template

from billing.money import format_money
from dashboard.formatting import (
    format_count,
    format_count_compact,
    format_money_short,
    format_price,
)

register = template.Library()


@register.filter
def money(value: Decimal) -> str:
    """$1,234.567890 (6 places, as stored)."""
    return format_money(value)


@register.filter
def money_short(value: Decimal) -> str:
    return format_money_short(value)


@register.filter
def price(value: Decimal) -> str:
    return format_price(value)


@register.filter
def count(value: int) -> str:
    return format_count(value)


@register.filter
def count_compact(value: int) -> str:
    return format_count_compact(value)


@register.filter
def recent_mix(forecast) -> list[str]:
    """["1.2 M input tokens", "300 K completion tokens", "4 K images"]: what the balance
    buys if it is spent in the same proportions as the last 30 days."""
    parts = [
        (forecast.input_tokens, "input tokens"),
        (forecast.cached_tokens, "cached tokens"),
        (forecast.completion_tokens, "completion tokens"),
        (forecast.images, "images"),
    ]
    return [f"{format_count_compact(n)} {label}" for n, label in parts if n > 0]
