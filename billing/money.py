"""Money: exact Decimals, 6 places (micro-dollars), one rounding rule.

Every amount the portal stores or shows goes through `quantize_money`. Prices are kept
per unit with more places (a cached token costs $0.000000075) and are never rounded;
only the charge computed from them is, once, when it is recorded."""

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation

from portal.amounts import parse_amount

MONEY_PLACES = 6
MONEY_QUANT = Decimal(1).scaleb(-MONEY_PLACES)  # 0.000001
MONEY_MAX_DIGITS = 18
PRICE_PLACES = 12
PRICE_MAX_DIGITS = 24
ZERO = Decimal("0.000000")
# The largest amount a money column holds (18 digits, 6 of them decimals).
MONEY_MAX = Decimal(10) ** (MONEY_MAX_DIGITS - MONEY_PLACES) - MONEY_QUANT
PER_MILLION = Decimal(1_000_000)
PER_TEN_THOUSAND = Decimal(10_000)


def quantize_money(value: Decimal | int | str) -> Decimal:
    """Round to 6 places, half-up. The one place money is rounded."""
    if isinstance(value, float):
        raise TypeError("money must never be a float")
    return Decimal(value).quantize(MONEY_QUANT, rounding=ROUND_HALF_UP)


def money_exact(value: Decimal | int | str) -> Decimal:
    """An amount a person or a payment system gave, unchanged: at most 6 places, or ValueError.

    Unlike a usage charge (computed, then rounded once), an amount someone typed is never
    rounded: 1.0000004 is refused rather than silently recorded as 1.000000.
    """
    if isinstance(value, float):
        raise TypeError("money must never be a float")
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"'{value}' is not an amount") from exc
    if not amount.is_finite():
        raise ValueError(f"'{value}' is not an amount")
    # The size check comes first: quantizing an enormous value overflows the context.
    if abs(amount) > MONEY_MAX:
        raise ValueError(f"amounts are at most {MONEY_MAX:,}")
    if amount != amount.quantize(MONEY_QUANT, rounding=ROUND_HALF_UP):
        raise ValueError("amounts have at most 6 decimal places")
    return quantize_money(amount)


def parse_money(text: str) -> Decimal:
    """Parse what a person typed ("12.5", "$1,000.00") into an exact amount, or raise
    ValueError. A comma only between thousands (portal.amounts, the one parser of typed
    amounts): "0,50" is refused with a message showing how to write it, never read as 50."""
    return money_exact(parse_amount(text, places=MONEY_PLACES, max_value=MONEY_MAX))


def charge_for(quantity: int, unit_price: Decimal) -> Decimal:
    """What `quantity` units cost at `unit_price`: one half-up rounding to 6 places."""
    return quantize_money(Decimal(quantity) * unit_price)


def units_affordable(balance: Decimal, unit_price: Decimal) -> int:
    """How many whole units a balance buys at a unit price (0 when the balance is not positive)."""
    if balance <= 0 or unit_price <= 0:
        return 0
    return int((balance / unit_price).to_integral_value(rounding=ROUND_FLOOR))


def format_money(value: Decimal, places: int = MONEY_PLACES) -> str:
    """ "$1,234.567890" / "-$0.120000": the digits the ledger holds, with separators."""
    q = (
        quantize_money(value)
        if places == MONEY_PLACES
        else value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    )
    sign = "-" if q < 0 else ""
    return f"{sign}${abs(q):,.{places}f}"
