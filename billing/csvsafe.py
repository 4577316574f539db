"""CSV cells no spreadsheet evaluates: the customer's history download and the billing
team's reconciliation report both write through `safe_cell`, so text a customer or an
upstream record controls (a description, a license name) cannot run as a formula when the
file is opened in a spreadsheet. Amounts are written as plain signed decimals and stay numbers."""

from decimal import Decimal

from billing.money import MONEY_PLACES, quantize_money

# A cell starting with one of these is a formula (or can become one) in Excel, LibreOffice
# and Google Sheets (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """Text for a CSV cell that no spreadsheet will evaluate: a leading ' neutralizes it."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def money_cell(amount: Decimal) -> str:
    """A signed amount with exactly 6 decimals ("-0.000740"): numeric, never neutralized."""
    return f"{quantize_money(amount):.{MONEY_PLACES}f}"
