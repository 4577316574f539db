"""CSV files: the customer's history download and the billing team's reconciliation report.

Both go through `safe_cell`, so text a customer or an upstream record controls (a
description, a license name) cannot run as a formula when the file is opened in a
spreadsheet. Amounts are written as plain signed decimals and stay numbers.
"""

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from billing.money import MONEY_PLACES, quantize_money
from billing.selectors import ReconciliationReport

# A cell starting with one of these is a formula (or can become one) in Excel, LibreOffice
# and Google Sheets (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """Text for a CSV cell that no spreadsheet will evaluate: a leading ' neutralizes it."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def money_cell(amount) -> str:
    """A signed amount with exactly 6 decimals ("-0.000740"): numeric, never neutralized."""
    return f"{quantize_money(amount):.{MONEY_PLACES}f}"


HISTORY_HEADER = (
    "date_time",
    "type",
    "service",
    "amount",
    "tokens",
    "images",
    "description",
    "entry_id",
)


def history_filename(now: datetime, tz: ZoneInfo) -> str:
    """token_usage_history_2025-06-30_14-30-15.csv, the time in the license's timezone."""
    return f"token_usage_history_{now.astimezone(tz):%Y-%m-%d_%H-%M-%S}.csv"


def history_csv_lines(pages: Iterable[str]) -> Iterator[str]:
    """The CSV text: the header first (at once), then one chunk per page of entries.

    The pages come from billing.selectors.ledger_history_csv_pages, whose SQL writes each
    line as this module would (safe_cell, money_cell, the csv module's quoting, CRLF).
    Nothing here holds more than one page, so the download's memory does not grow with
    the history; a chunk per page (not per row) keeps the server's write calls few.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(HISTORY_HEADER)
    yield buffer.getvalue()
    yield from pages


RECONCILIATION_HEADER = (
    "month",
    "license_key",
    "license_name",
    "timezone",
    "opening_balance",
    "purchases",
    "usage",
    "refunds",
    "closing_balance",
    "entries_in_month",
    "stored_balance",
    "ledger_balance",
    "status",
    "differences",
)


def reconciliation_csv_rows(report: ReconciliationReport) -> Iterator[list[str]]:
    yield list(RECONCILIATION_HEADER)
    month = report.month.strftime("%Y-%m")
    for row in report.rows:
        yield [
            month,
            safe_cell(row.key),
            safe_cell(row.name),
            row.timezone,
            money_cell(row.opening),
            money_cell(row.purchases),
            money_cell(row.usage),
            money_cell(row.refunds),
            money_cell(row.closing),
            str(row.month_entries),
            money_cell(row.stored_balance) if row.stored_balance is not None else "",
            money_cell(row.ledger_balance),
            "ok" if row.ok else "DIFFERS",
            safe_cell("; ".join(str(d) for d in row.differences)),
        ]


def reconciliation_csv_write(report: ReconciliationReport, out) -> None:
    """Write the report as CSV to a text file opened with newline=''."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(reconciliation_csv_rows(report))


def reconciliation_filename(report: ReconciliationReport) -> str:
    return f"ledger_reconciliation_{report.month:%Y-%m}.csv"
