"""How the API writes and reads values: money as a decimal string with 6 places; local
days (YYYY-MM-DD) and months (YYYY-MM) between 1970 and 9998; transaction cursors; page
sizes; free text without control characters. Each is a pattern the OpenAPI document shows
and the one check the request is held to."""

import re
from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema

from billing.money import quantize_money

MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{6}$"
MAX_PAGE = 200

Money = Field(pattern=MONEY_PATTERN, examples=["12.345678"])

# The years of billing.charges.selectors.LOCAL_DATE_MIN … LOCAL_DATE_MAX (1970-01-01 …
# 9998-12-31), the local days every range and filter may name (tests/api/test_formats.py
# holds the two together). [0-9], not \d: in Python and in pydantic's regex engine \d is
# any Unicode digit, and only ASCII digits are read here (docs/invariants.md, 12).
YEAR = r"(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
DAY_PATTERN = rf"^{YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
MONTH_PATTERN = rf"^{YEAR}-(0[1-9]|1[0-2])$"
# billing.history.transactions.Cursor: "<µs since 1970>.<entry id>", bounded so that every
# cursor of this shape is a position in the list (the time between years 1653 and 5138,
# the id below 10^18), so none is refused after the pattern.
CURSOR_PATTERN = r"^(-?[0-9]{1,16}|[0-9]{17})\.[1-9][0-9]{0,17}$"
# Text matched exactly against what the ledger holds (endpoints, statuses, ids): no
# control characters, which no stored value has and PostgreSQL cannot compare (NUL).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"


# What a request that misses each pattern is told (a regular expression is not for people).
PATTERN_WORDS = {
    DAY_PATTERN: "write a local day as YYYY-MM-DD, from 1970-01-01 to 9998-12-31",
    MONTH_PATTERN: "write a month as YYYY-MM, from 1970-01 to 9998-12",
    CURSOR_PATTERN: "the cursor is not one this API gave out",
    TEXT_PATTERN: "control characters are not allowed",
}


def money(value: Decimal) -> str:
    return f"{quantize_money(value):f}"


def _local_day(value: object) -> object:
    # pydantic alone would also read "0" (a Unix time) or "2025-06-10T00:00" as a day.
    if not isinstance(value, date) and not (
        isinstance(value, str) and re.fullmatch(DAY_PATTERN, value)
    ):
        raise ValueError(PATTERN_WORDS[DAY_PATTERN])
    return value


LocalDay = Annotated[
    date,
    BeforeValidator(_local_day),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN}),
]
