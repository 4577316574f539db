"""How the dashboard writes numbers for people. Exact amounts go through billing.money.

The stored amount (6 places) is what tables show; charts, whose labels must fit under a
15-pixel bar, show the same amount rounded half-up to the cent (docs/product.md: "Jun 30: $1.23"),
and "<$0.01" below a cent, where cents would read "$0.00" under a blue bar.
"""

from decimal import ROUND_HALF_UP, Decimal

from billing.money import format_money

CENT = Decimal("0.01")


def format_count(value: int) -> str:
    """1234567 -> "1,234,567" (the same in every locale, like the CSV)."""
    return f"{int(value):,}"


def format_money_short(value: Decimal) -> str:
    """Chart labels, one precision rule: cents, "$1.23"; "<$0.01" for any amount below a
    cent but above zero (cents would read "$0.00" under a bar that shows spending). The
    exact amount is in the tables beside the charts."""
    if 0 < value < CENT:
        return "<$0.01"
    return format_money(value, places=2)


def format_price(value: Decimal) -> str:
    """A unit or bulk price with the digits it has, at least cents: $0.60, $0.075, $0.0001."""
    value = Decimal(value).normalize()
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int), "a price is a finite number"
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
