"""The customer's history download: entries newest first as CSV, in keyset pages that
PostgreSQL writes, so memory and the cost per page stay flat whatever the history's length."""

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connections, transaction
from django.db.models import QuerySet

from accounts.models import License
from billing.models import LedgerEntry
from portal.db_router import read_alias

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

    The pages come from ledger_history_csv_pages, whose SQL writes each line as
    billing.csvsafe would (safe_cell, money_cell, the csv module's quoting, CRLF).
    Nothing here holds more than one page, so the download's memory does not grow with
    the history; a chunk per page (not per row) keeps the server's write calls few.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(HISTORY_HEADER)
    yield buffer.getvalue()
    yield from pages


# Entries per page of the history download: one query and a chunk of about 600 KB.
HISTORY_PAGE_SIZE = 5000


@dataclass(frozen=True)
class HistoryFilter:
    """Which entries a history download covers: [start, end) and one kind, each optional."""

    start: datetime | None = None
    end: datetime | None = None
    kind: str | None = None

    @classmethod
    def for_local_dates(
        cls, license: License, *, date_from: date | None, date_to: date | None, kind: str | None
    ) -> "HistoryFilter":
        """Dates are days in the license's timezone; both ends are inclusive."""
        tz = license.tzinfo
        start = datetime.combine(date_from, time.min, tzinfo=tz) if date_from else None
        end = (
            datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=tz) if date_to else None
        )
        return cls(start=start, end=end, kind=kind or None)

    @property
    def is_empty(self) -> bool:
        return self.start is None and self.end is None and self.kind is None


def _history_queryset(license: License, flt: HistoryFilter) -> QuerySet[LedgerEntry]:
    qs = LedgerEntry.objects.for_license(license)
    if flt.start is not None:
        qs = qs.filter(occurred_at__gte=flt.start)
    if flt.end is not None:
        qs = qs.filter(occurred_at__lt=flt.end)
    if flt.kind:
        qs = qs.filter(kind=flt.kind)
    return qs


def ledger_history_exists(license: License, flt: HistoryFilter | None = None) -> bool:
    # Ordered like the index, so PostgreSQL probes ledger_license_recent. A bare EXISTS
    # (LIMIT 1, no order) may be planned as a sequential scan that expects to meet the
    # license's rows early, and reads the whole ledger when they sit at its end.
    qs = _history_queryset(license, flt or HistoryFilter()).order_by("-occurred_at", "-id")
    return qs.values_list("id", flat=True).first() is not None


HISTORY_FIELDS = (
    "id",
    "occurred_at",
    "kind",
    "service",
    "amount",
    "tokens",
    "images",
    "description",
)


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


# One CSV line per entry (HISTORY_HEADER's columns), written by PostgreSQL.
# The page runs with TimeZone set to the license's, so TZH:TZM is the offset in effect at
# that moment, as datetime.isoformat() writes it. Amounts are numeric(18, 6) and print with
# their 6 places, like billing.csvsafe.money_cell. Kind and service go out as stored: the
# ledger's CHECK constraints allow only plain words there (and a test holds the whole file
# against the Python writer).
_HISTORY_CSV_LINE = (
    "to_char(occurred_at, 'YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM') || ',' || kind || ',' || service"
    " || ',' || amount || ',' || tokens || ',' || images"
    f" || ',' || {_csv_cell_sql('description')} || ',' || id || chr(13) || chr(10)"
)
# A page comes back as one row: its lines joined in order (one string, not thousands of
# Python objects to join again), how many, and the key of its last entry for the next page
# (no row at all when the page is empty). Built from constants only: values are parameters.
_HISTORY_CSV_SQL = (
    "WITH page AS MATERIALIZED ({page})"  # noqa: S608
    f" SELECT (SELECT string_agg({_HISTORY_CSV_LINE}, '' ORDER BY occurred_at DESC, id DESC)"
    " FROM page), (SELECT count(*) FROM page), last.occurred_at::text, last.id"
    " FROM (SELECT occurred_at, id FROM page ORDER BY occurred_at, id LIMIT 1) AS last"
)


def ledger_history_csv_pages(
    license: License, flt: HistoryFilter | None = None, *, page_size: int | None = None
) -> Iterator[str]:
    """The license's entries newest first as CSV text (no header), one string per page.

    Keyset paging on (occurred_at, id) over the index ledger_license_recent: each page
    is one index range scan starting where the last one ended, so memory and the cost per
    page stay the same for ten entries or ten million. `occurred_at <= last` is the index
    bound; the exclusion only skips the already-sent rows sharing that exact moment.

    PostgreSQL writes the page (_HISTORY_CSV_SQL) and Python passes it on: loading every
    timestamp and amount into Python objects to print them again ran the download at a
    tenth of COPY's speed, and took CPU from the pages served beside it
    (docs/benchmarks.md, parts 2 and 4).
    """
    page_size = page_size or HISTORY_PAGE_SIZE
    base = _history_queryset(license, flt or HistoryFilter()).order_by("-occurred_at", "-id")
    last: tuple[str, int] | None = None
    while True:
        qs = base
        if last is not None:
            qs = qs.filter(occurred_at__lte=last[0]).exclude(occurred_at=last[0], id__gte=last[1])
        page_sql, params = qs.values_list(*HISTORY_FIELDS)[:page_size].query.sql_with_params()
        # The replica when the view allows it (portal.db_router); a replica that stops
        # mid-download fails that download, and the next one reads from the primary.
        alias = read_alias(LedgerEntry)
        connection = connections[alias]
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            # The license's timezone for this transaction only (SET LOCAL), and put back
            # at once, for when the page runs inside a longer transaction (tests).
            cursor.execute("SELECT set_config('TimeZone', %s, true)", [license.timezone])
            try:
                cursor.execute(_HISTORY_CSV_SQL.format(page=page_sql), params)
                row = cursor.fetchone()
            finally:
                cursor.execute(
                    "SELECT set_config('TimeZone', %s, true)", [connection.timezone_name]
                )
        if row is None:
            return
        text, count, last_at, last_id = row
        del row
        yield text
        # Let the page go before the next one is fetched: two pages at once would be the
        # download's peak memory.
        del text
        if count < page_size:
            return
        # The last entry's moment as PostgreSQL printed it: exact, with its offset.
        last = (last_at, last_id)
