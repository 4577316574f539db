"""Filters for the customer pages: the same digits the ledger and the CSV hold."""

from decimal import Decimal

from django import template

from billing.money import format_money
from usage.formatting import format_count, format_money_short, format_price

register = template.Library()


@register.filter
def money(value: Decimal) -> str:
    """$1,234.567890 (6 places, as stored)."""
    return format_money(value)


@register.filter
def money_abs(value: Decimal) -> str:
    """The guide's transaction amounts: always positive, the colour says the direction."""
    return format_money(abs(value))


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
def per_million(unit_price: Decimal | None) -> str:
    """A per-token price as the guide writes it: per 1M tokens."""
    return "—" if unit_price is None else format_price(unit_price * 1_000_000)
