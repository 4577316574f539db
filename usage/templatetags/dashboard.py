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
def money_short(value: Decimal) -> str:
    return format_money_short(value)


@register.filter
def price(value: Decimal) -> str:
    return format_price(value)


@register.filter
def count(value: int) -> str:
    return format_count(value)
