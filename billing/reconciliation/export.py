"""The reconciliation as a CSV file for the billing team: one row per license and month,
its figures and its differences, every text cell safe for a spreadsheet."""

import csv
from collections.abc import Iterator
from typing import Protocol

from billing.credits.selectors import GRANT_MONTH_FIGURES
from billing.csvsafe import money_cell, safe_cell
from billing.reconciliation.report import ReconciliationReport

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
    # Added with the "credit" kind (issue 14); last, so existing columns keep their places.
    "credits",
    # Added with the six movements and the credit grants (issue 26), after the rest: the
    # bridge's terms "refunds" joined (usage refunds less purchase refunds), then the
    # month's credit by kind (billing.credits.selectors.GrantMonth).
    "purchase_refunds",
    "usage_refunds",
    "expired",
    *GRANT_MONTH_FIGURES,
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
            money_cell(row.credits),
            money_cell(row.purchase_refunds),
            money_cell(row.usage_refunds),
            money_cell(row.expired),
            *(money_cell(row.grant_figure(name)) for name in GRANT_MONTH_FIGURES),
        ]


class Writable(Protocol):
    def write(self, text: str, /) -> object: ...


def reconciliation_csv_write(report: ReconciliationReport, out: Writable) -> None:
    """Write the report as CSV to a text file opened with newline=''."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(reconciliation_csv_rows(report))


def reconciliation_filename(report: ReconciliationReport) -> str:
    return f"ledger_reconciliation_{report.month:%Y-%m}.csv"
