"""How the API writes and reads values: money as a decimal string with 6 places, the
local days a range may span, the size of a page."""

from datetime import date
from decimal import Decimal

from pydantic import Field

from api.v1.errors import ApiError
from billing.charges.selectors import LOCAL_DATE_MAX, LOCAL_DATE_MIN
from billing.money import quantize_money

MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{6}$"
MAX_PAGE = 200

Money = Field(pattern=MONEY_PATTERN, examples=["12.345678"])


def money(value: Decimal) -> str:
    return f"{quantize_money(value):f}"


def dates_check(date_from: date | None, date_to: date | None) -> None:
    for value in (date_from, date_to):
        if value is not None and not LOCAL_DATE_MIN <= value <= LOCAL_DATE_MAX:
            raise ApiError(
                400, "invalid_request", f"Dates lie between {LOCAL_DATE_MIN} and {LOCAL_DATE_MAX}."
            )
    if date_from and date_to and date_from > date_to:
        raise ApiError(400, "invalid_request", "'from' is after 'to'.")
