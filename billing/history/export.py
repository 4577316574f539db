"""The customer's history download: entries newest first as CSV, in keyset pages that
PostgreSQL writes, so memory and the cost per page stay flat whatever the history's length."""

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connections, transaction

from accounts.models import License
from billing.history.transactions import TransactionFilter
from billing.history.types import movement_type_sql
from billing.ledger.kinds import movement_sql
from billing.ledger.models import NEWEST_FIRST
from billing.ledger.pages import NEWER_THAN_CURSOR_SQL, NOTHING_NEWER_SQL
from billing.models import LedgerEntry
from portal.db_router import read_alias
from portal.plans import rows_in_index_order, sql_rows_in_index_order

HISTORY_HEADER = (
    "date_time",  # ISO 8601 with the offset in effect then: 2025-06-30T14:30:15-04:00
    "local_time",  # the same moment as spreadsheets read a date: 2025-06-30 14:30:15
    "type",  # the movement: purchase, purchase_refund, credit, usage_refund, usage, expiry
    "service",
    "amount",
    "balance",  # the balance right after the entry
    "tokens",
    "images",
    "description",
    "entry_id",
)
# Excel takes UTF-8 for its local code page unless the file starts with a byte order mark
# (and then "Café" stays "Café"); the csv module and LibreOffice read it as "utf-8-sig".
BOM = "\ufeff"


def history_filename(now: datetime, tz: ZoneInfo) -> str:
    """token_usage_history_2025-06-30_14-30-15.csv, the time in the license's timezone."""
    return f"token_usage_history_{now.astimezone(tz):%Y-%m-%d_%H-%M-%S}.csv"


def history_csv_lines(pages: Iterable[str], *, bom: bool = False) -> Iterator[str]:
    """The CSV text: the header first (at once, after a BOM for spreadsheets), then one
    chunk per page of entries.

    The pages come from ledger_history_csv_pages, whose SQL writes each line as
    billing.csvsafe would (safe_cell, money_cell, the csv module's quoting, CRLF).
    Nothing here holds more than one page, so the download's memory does not grow with
    the history; a chunk per page (not per row) keeps the server's write calls few.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(HISTORY_HEADER)
    yield (BOM if bom else "") + buffer.getvalue()
    yield from pages


# Entries per page of the history download: one query and a chunk of about 700 KB.
HISTORY_PAGE_SIZE = 5000


def ledger_history_exists(license: License, flt: TransactionFilter | None = None) -> bool:
    # Ordered like the index, so PostgreSQL probes ledger_license_recent. A bare EXISTS
    # (LIMIT 1, no order) may be planned as a sequential scan that expects to meet the
    # license's rows early, and reads the whole ledger when they sit at its end.
    qs = (flt or TransactionFilter()).apply(LedgerEntry.objects.history_of(license))
    return bool(rows_in_index_order(qs.order_by(*NEWEST_FIRST).values_list("id")[:1]))


def _csv_cell_sql(column: str) -> str:
    """SQL for a text cell as billing.csvsafe writes it: safe_cell's leading ' before a
    formula trigger (FORMULA_TRIGGERS), then quoted as Python's csv module quotes
    (QUOTE_MINIMAL: a cell holding a comma, a double quote, CR or LF; quotes doubled)."""
    safe = (
        f"CASE WHEN left({column}, 1) IN ('=', '+', '-', '@', chr(9), chr(13))"
        f" THEN '''' || {column} ELSE {column} END"
    )
    needs_quotes = " OR ".join(
        f"strpos({column}, {char}) > 0" for char in ("','", "'\"'", "chr(13)", "chr(10)")
    )
    return f"CASE WHEN {needs_quotes} THEN '\"' || replace({safe}, '\"', '\"\"') || '\"' ELSE {safe} END"


# The type column is the line's movement by its name (billing.ledger.kinds: purchase,
# purchase_refund, credit, usage_refund, usage, expiry), as the API names it: a refund to
# the card and a refund of a charge are told apart, as every surface tells them.
_TYPE_SQL = movement_sql()

# One CSV line per entry (HISTORY_HEADER's columns), written by PostgreSQL.
# The page runs with TimeZone set to the license's, so TZH:TZM is the offset in effect at
# that moment, as datetime.isoformat() writes it, and the local time is the license's wall
# clock. Amounts and balances are numeric(18, 6) and print with their 6 places, like
# billing.csvsafe.money_cell. Service goes out as stored: the ledger's CHECK constraints
# allow only plain words there (and a test holds the whole file against the Python writer).
_HISTORY_CSV_LINE = (
    "to_char(occurred_at, 'YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM')"
    " || ',' || to_char(occurred_at, 'YYYY-MM-DD HH24:MI:SS')"
    f" || ',' || {_TYPE_SQL} || ',' || service"
    " || ',' || amount || ',' || running || ',' || tokens || ',' || images"
    f" || ',' || {_csv_cell_sql('description')} || ',' || id || chr(13) || chr(10)"
)
# A page is the next `limit` entries of the date range, whatever their type, so the
# running balance can be taken over them: the balance now, less everything newer than the
# page (billing.ledger.pages: the rollups of later local days and the entries of the
# page's own day above it), less the entries above each row within the page. Then the
# other filters pick the lines to write. All in one statement: one snapshot, exact.
# It comes back as one row: the lines joined in order (one string, not thousands of Python
# objects to join again), how many entries were read, and the key of the last one for the
# next page (no row at all when the page is empty). Built from constants only: values are
# parameters.
_HISTORY_CSV_SQL = (
    "WITH bal AS (SELECT coalesce((SELECT balance FROM billing_licensebalance"  # noqa: S608
    " WHERE license_id = %(lid)s), 0) AS balance),"
    " newer AS ({newer}),"
    " page AS MATERIALIZED ("
    "SELECT id, occurred_at, kind, service, amount, tokens, images, description, endpoint, status"
    # A range of one license, ordered with it (LedgerQuerySet.history_of says why).
    " FROM billing_ledgerentry WHERE license_id >= %(lid)s AND license_id <= %(lid)s {bounds}"
    " ORDER BY license_id, occurred_at DESC, id DESC LIMIT %(limit)s),"
    " run AS (SELECT page.*, (SELECT balance FROM bal) - (SELECT amount FROM newer)"
    " - coalesce(sum(amount) OVER (ORDER BY occurred_at DESC, id DESC"
    " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS running FROM page)"
    f" SELECT (SELECT string_agg({_HISTORY_CSV_LINE}, '' ORDER BY occurred_at DESC, id DESC)"
    " FROM run WHERE true {match}), (SELECT count(*) FROM page), last.occurred_at::text, last.id"
    " FROM (SELECT occurred_at, id FROM page ORDER BY occurred_at, id LIMIT 1) AS last"
)
# Which of a page's entries are written: TransactionFilter's fields but the dates (and
# the type, a movement: movement_type_sql).
_MATCH_COLUMNS = ("service", "endpoint", "status")


def ledger_history_csv_pages(
    license: License, flt: TransactionFilter | None = None, *, page_size: int | None = None
) -> Iterator[str]:
    """The license's entries newest first as CSV text (no header), one string per page,
    each line with the balance right after its entry.

    Keyset paging on (occurred_at, id) over the index ledger_license_recent: each page
    is one index range scan starting where the last one ended, so memory and the cost per
    page stay the same for ten entries or ten million. `occurred_at <= last` is the index
    bound; the row comparison only skips the already-sent rows sharing that exact moment.
    Filters other than the dates choose lines within a page (the running balance counts
    every entry), so a narrow filter reads the range's pages like a full download.

    PostgreSQL writes the page (_HISTORY_CSV_SQL) and Python passes it on: loading every
    timestamp and amount into Python objects to print them again ran the download at a
    tenth of COPY's speed, and took CPU from the pages served beside it
    (docs/benchmarks.md, parts 2 and 4).
    """
    flt = flt or TransactionFilter()
    page_size = page_size or HISTORY_PAGE_SIZE
    params: dict[str, Any] = {"lid": license.pk, "tz": license.timezone, "limit": page_size}
    match = f" AND ({movement_type_sql(flt.kind)})" if flt.kind else ""
    for column in _MATCH_COLUMNS:
        if getattr(flt, column):
            params[f"match_{column}"] = getattr(flt, column)
            match += f" AND {column} = %(match_{column})s"
    start_bound = " AND occurred_at >= %(start)s" if flt.start is not None else ""
    if flt.start is not None:
        params["start"] = flt.start
    # Before the first page: everything at or after the range's end is "newer".
    if flt.end is not None:
        newer = NEWER_THAN_CURSOR_SQL
        bounds = start_bound + " AND occurred_at < %(at)s::timestamptz"
        params["at"], params["id"] = flt.end, 0
    else:
        newer, bounds = NOTHING_NEWER_SQL, start_bound
    while True:
        sql = _HISTORY_CSV_SQL.format(newer=newer, bounds=bounds, match=match)
        # The replica when the view allows it (portal.db_router); a replica that stops
        # mid-download fails that download, and the next one reads from the primary.
        alias = read_alias(LedgerEntry)
        connection = connections[alias]
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            # The license's timezone for this transaction only (SET LOCAL), and put back
            # at once, for when the page runs inside a longer transaction (tests).
            cursor.execute("SELECT set_config('TimeZone', %s, true)", [license.timezone])
            try:
                # Planned in index order (portal.plans): a page is a range of the
                # index, whatever the planner's statistics say.
                rows = sql_rows_in_index_order(alias, sql, params)
                row = rows[0] if rows else None
            finally:
                cursor.execute(
                    "SELECT set_config('TimeZone', %s, true)", [connection.timezone_name]
                )
        if row is None:
            return
        text, count, last_at, last_id = row
        del row
        if text:
            yield text
        # Let the page go before the next one is fetched: two pages at once would be the
        # download's peak memory.
        del text
        if count < page_size:
            return
        # The last entry's moment as PostgreSQL printed it: exact, with its offset.
        params["at"], params["id"] = last_at, last_id
        newer = NEWER_THAN_CURSOR_SQL
        bounds = (
            start_bound + " AND occurred_at <= %(at)s::timestamptz"
            " AND (occurred_at, id) < (%(at)s::timestamptz, %(id)s::bigint)"
        )
