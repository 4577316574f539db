"""How the dashboard writes numbers and dates for people. Exact amounts go through billing.money.

The stored amount (6 places) is what tables show; charts, whose labels must fit under a
15-pixel bar, show the same amount rounded half-up to the cent ("$1.23"), and "<$0.01" below
a cent, where cents would read "$0.00" under a blue bar (`format_chart_money`, used by
templates through the |chart_money filter only). A chart's tooltip names the exact amount
("Nov 14: $0.004213", `format_chart_exact`, the |exact_money filter).
"""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from billing.money import format_money
from portal.moments import MONTH_ABBR as MONTH_ABBR  # the dashboard's labels, beside DAY_ABBR

CENT = Decimal("0.01")
# The weekdays beside portal.moments.MONTH_ABBR, in English whatever the server's locale.
DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def format_day(day: date) -> str:
    """ "Jun 30, 2025" (Django's |date:"M j, Y", in English whatever the locale)."""
    return f"{MONTH_ABBR[day.month - 1]} {day.day}, {day.year}"


def format_count(value: int) -> str:
    """1234567 -> "1,234,567" (the same in every locale, like the CSV)."""
    return f"{int(value):,}"


def format_chart_money(value: Decimal) -> str:
    """The one precision rule for chart labels: cents, half-up ("$1.23", "$1,234.50");
    "<$0.01" for spending above zero but below a cent; "$0.00" for none."""
    if 0 < value < CENT:
        return "<$0.01"
    return format_money(value, places=2)


def format_chart_exact(value: Decimal) -> str:
    """A chart's tooltip: the stored amount with every digit that counts, its zeros past
    the cents dropped ("$0.004213", "$1.2345", "$1.23", "$0.00"): what the bar's rounded
    label stands for, the same digits as the tables."""
    whole, _, fraction = format_money(value).partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def format_money_short(value: Decimal) -> str:
    """Amounts in prose (thresholds, payments): "$1.23"; below a cent the significant
    digits: "$0.0042". Charts use format_chart_money."""
    if value == 0 or abs(value) >= CENT:
        return format_money(value, places=2)
    text = format_money(value)  # 6 places, e.g. "$0.004200"
    return text.rstrip("0")


def format_price(value: Decimal) -> str:
    """A unit or bulk price with the digits it has, at least cents: $0.60, $0.075, $0.0001."""
    value = Decimal(value).normalize()
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"a price is a finite number, not {value}")
    places = max(2, -exponent)
    return f"${value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,.{places}f}"


def format_count_compact(value: int) -> str:
    """1234567 -> "1.2 M", 300000 -> "300 K", 4200 -> "4.2 K", 950 -> "950" (for prose)."""
    value = int(value)
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if abs(value) >= size:
            scaled = Decimal(value) / size
            places = 1 if abs(scaled) < 100 else 0
            text = f"{scaled.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"
            return f"{text.removesuffix('.0')} {suffix}"
    return str(value)


def format_age(seconds: float) -> str:
    """How long ago, for people: "just now", "1 minute ago", "40 minutes ago", "3 hours ago",
    "2 days ago" (whole units, rounded down: "59 minutes" stays minutes)."""
    seconds = max(0, int(seconds))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'} ago"
    return "just now"
