"""Filters for the customer pages: the same digits the ledger and the CSV hold."""

import functools
from decimal import Decimal
from uuid import UUID

from django import template
from django.urls import get_script_prefix, reverse

from accounts.models import License
from billing.money import format_money
from dashboard.formatting import (
    format_chart_exact,
    format_chart_money,
    format_count,
    format_count_compact,
    format_money_short,
    format_price,
)
from portal.moments import format_local_time

register = template.Library()


@register.filter
def money(value: Decimal) -> str:
    """$1,234.567890 (6 places, as stored)."""
    return format_money(value)


@register.filter
def money_short(value: Decimal) -> str:
    return format_money_short(value)


@register.filter
def chart_money(value: Decimal) -> str:
    """The amounts a chart prints (bar labels, axis, the chart's summary): cents, "<$0.01"
    below a cent (dashboard.formatting.format_chart_money)."""
    return format_chart_money(value)


@register.filter
def exact_money(value: Decimal) -> str:
    """A chart's tooltip: the exact amount, no zeros past the cents ("$0.004213", "$1.23")."""
    return format_chart_exact(value)


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


@register.filter
def abs_money(value: Decimal) -> str:
    """The amount without its sign (the colour and the hidden word say the direction)."""
    return format_money(abs(value))


@register.filter
def signed_money(value: Decimal) -> str:
    """ "+$10.000000" for money in, "-$4.000000" for money out: the balance's view."""
    return ("+" if value > 0 else "") + format_money(value)


@register.filter
def local_time(moment, license) -> str:
    """A moment for people, in the license's timezone and saying which: "Dec 7, 2026 11:01
    EST (America/New_York)"."""
    return format_local_time(moment, license.timezone) if moment is not None else ""


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key) if mapping and key else None


@register.filter
def in_tz(moment, license) -> str:
    """A moment as "2025-06-30 14:30:15" in the license's timezone (Django's |date would
    show it in the request's timezone)."""
    return f"{moment.astimezone(license.tzinfo):%Y-%m-%d %H:%M:%S}" if moment is not None else ""


@register.filter
def exact(value: Decimal) -> str:
    """Every digit of an exact product, with no exponent: 0.000123456789000000."""
    return f"{value:f}"


@register.filter
def signed_exact(value: Decimal) -> str:
    return f"{value:+f}"


@functools.lru_cache(maxsize=4096)
def _license_url(script_prefix: str, name: str, public_id: UUID) -> str:
    return reverse(name, kwargs={"license_id": public_id})


@register.simple_tag
def license_url(name: str, license: License) -> str:
    """{% url name license_id=license.public_id %}, reversed once per process for each page
    and license: a customer page links to twenty of its license's pages (the navigation),
    and Django's reverse was a seventh of a kept dashboard's CPU (docs/benchmarks.md,
    part 1). The URLs are fixed for the process but for the script prefix, which is kept
    with them."""
    return _license_url(get_script_prefix(), name, license.public_id)
