"""Reads of ledger data. Every tenant query goes through `for_license`."""

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import License
from billing.models import DailyRollup, LedgerEntry, LicenseBalance, Price, Service
from billing.money import ZERO, quantize_money
from portal.exceptions import ApplicationError


class PriceBook:
    """All prices, to look up the one in effect for a service at a moment."""

    def __init__(self, prices):
        self._starts: dict[str, list[datetime]] = {}
        self._prices: dict[str, list[Decimal]] = {}
        for price in sorted(prices, key=lambda p: (p.service, p.effective_from)):
            self._starts.setdefault(price.service, []).append(price.effective_from)
            self._prices.setdefault(price.service, []).append(price.unit_price)

    def unit_price(self, service: str, at: datetime) -> Decimal:
        starts = self._starts.get(service, [])
        i = bisect.bisect_right(starts, at)
        if i == 0:
            raise ApplicationError(f"No price for {service} was in effect at {at.isoformat()}.")
        return self._prices[service][i - 1]


def price_book_get() -> PriceBook:
    return PriceBook(Price.objects.all())


def prices_current(at: datetime | None = None) -> dict[str, Decimal]:
    """The unit price of each service in effect now (services without one are left out)."""
    at = at or timezone.now()
    book = price_book_get()
    current = {}
    for service in Service:
        try:
            current[service.value] = book.unit_price(service, at)
        except ApplicationError:
            continue
    return current


def refunded_total_for_entry(entry: LedgerEntry) -> Decimal:
    total = (
        LedgerEntry.objects.for_license(entry.license_id)
        .filter(refund_of=entry)
        .aggregate(total=Sum("amount"))["total"]
    )
    return total or Decimal("0")


def balance_get(license: License) -> LicenseBalance:
    """The license's balance and totals (zeros for a license with no entries yet)."""
    balance = LicenseBalance.objects.for_license(license).first()
    return balance or LicenseBalance(license=license)


@dataclass(frozen=True)
class Forecast:
    """How long the balance lasts at the last 30 days' rate, and what it buys at that mix."""

    window_days: int
    spent: Decimal  # usage charges in the window
    average_daily: Decimal  # spent / window_days, to 6 places
    days_left: int | None  # None when there is no recent usage
    until: date | None  # the local day the balance runs out (None: no usage, or > 10 years)
    input_tokens: int = 0  # what the balance buys at the recent mix
    cached_tokens: int = 0
    completion_tokens: int = 0
    images: int = 0

    @property
    def has_usage(self) -> bool:
        return self.spent > 0


FORECAST_WINDOW_DAYS = 30
FORECAST_HORIZON_DAYS = 3650  # beyond ten years a date says nothing useful


def forecast_window(today: date) -> tuple[date, date]:
    """The forecast's window: the last 30 local days, today included."""
    return today - timedelta(days=FORECAST_WINDOW_DAYS - 1), today


def forecast_get(license: License, *, balance: Decimal, today: date | None = None) -> Forecast:
    """From the daily rollups of the last 30 local days (today included), never the ledger."""
    today = today or timezone.localdate(timezone=license.tzinfo)
    start, end = forecast_window(today)
    rows = (
        DailyRollup.objects.for_license(license)
        .filter(kind=LedgerEntry.Kind.USAGE, day__gte=start, day__lte=end)
        .values("service")
        .annotate(amount=Sum("amount"), tokens=Sum("tokens"), images=Sum("images"))
        .order_by()
    )
    return forecast_from(rows, balance=balance, today=today)


def forecast_from(rows, *, balance: Decimal, today: date) -> Forecast:
    """The forecast from usage rollup sums of the window: rows of service, amount (negative,
    as stored), tokens and images; several rows per service are added up."""
    by_service: dict[str, dict] = {}
    for row in rows:
        acc = by_service.setdefault(
            row["service"], {"amount": Decimal("0"), "tokens": 0, "images": 0}
        )
        acc["amount"] += row["amount"] or 0
        acc["tokens"] += row["tokens"] or 0
        acc["images"] += row["images"] or 0
    spent = -sum((acc["amount"] for acc in by_service.values()), Decimal("0"))
    if spent <= 0:
        return Forecast(FORECAST_WINDOW_DAYS, Decimal("0"), Decimal("0"), None, None)
    average = quantize_money(spent / FORECAST_WINDOW_DAYS)
    days_left = max(0, int((balance / (spent / FORECAST_WINDOW_DAYS)) // 1)) if balance > 0 else 0

    def affordable(service: str, field: str) -> int:
        used = by_service.get(service, {}).get(field) or 0
        if balance <= 0 or not used:
            return 0
        return int((balance * used / spent) // 1)

    return Forecast(
        window_days=FORECAST_WINDOW_DAYS,
        spent=quantize_money(spent),
        average_daily=average,
        days_left=days_left,
        until=today + timedelta(days=days_left) if days_left <= FORECAST_HORIZON_DAYS else None,
        input_tokens=affordable(Service.AI_DATA, "tokens"),
        cached_tokens=affordable(Service.AI_DATA_CACHED, "tokens"),
        completion_tokens=affordable(Service.AI_DATA_COMPLETION, "tokens"),
        images=affordable(Service.AI_IMAGES, "images"),
    )


def entry_get_for_refund(entry_id: int) -> LedgerEntry | None:
    """A ledger entry with its license, for the staff's refund form (None if unknown)."""
    return LedgerEntry.objects.select_related("license").filter(pk=entry_id).first()


# --- customer history (CSV) ------------------------------------------------------------

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


def _history_queryset(license: License, flt: HistoryFilter):
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
    """SQL for a text cell as billing.exports writes it: safe_cell's leading ' before a
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


# One CSV line per entry (billing.exports.HISTORY_HEADER's columns), written by PostgreSQL.
# The page runs with TimeZone set to the license's, so TZH:TZM is the offset in effect at
# that moment, as datetime.isoformat() writes it. Amounts are numeric(18, 6) and print with
# their 6 places, like billing.exports.money_cell. Kind and service go out as stored: the
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
        with transaction.atomic(), connection.cursor() as cursor:
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


# --- reconciliation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """A stored figure that is not what the ledger entries sum to."""

    what: str
    stored: Decimal | int | None
    ledger: Decimal | int | None

    def __str__(self) -> str:
        return f"{self.what}: stored {self.stored}, ledger {self.ledger}"


@dataclass
class ReconciliationRow:
    license_id: int
    key: str
    name: str
    timezone: str
    opening: Decimal = ZERO
    purchases: Decimal = ZERO
    usage: Decimal = ZERO  # what was spent in the month, as a positive amount
    refunds: Decimal = ZERO
    closing: Decimal = ZERO
    month_entries: int = 0
    entries_to_month_end: int = 0
    ledger_balance: Decimal = ZERO  # sum of every entry, today
    stored_balance: Decimal | None = None  # LicenseBalance.balance (None: no row)
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


@dataclass
class ReconciliationReport:
    month: date  # the first day of the month
    rows: list[ReconciliationRow]
    generated_at: datetime

    @property
    def differing(self) -> list[ReconciliationRow]:
        return [row for row in self.rows if not row.ok]

    @property
    def ok(self) -> bool:
        return not self.differing


def month_parse(text: str) -> date:
    """'2025-06' → date(2025, 6, 1), or ValueError with a message for people."""
    try:
        parsed = datetime.strptime((text or "").strip(), "%Y-%m")  # noqa: DTZ007 - a month, no time
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a month; write it as YYYY-MM, e.g. 2025-06.") from exc
    return parsed.date()


def _next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


# One row per license: the month's movements (between local midnights of the first of the
# month and of the next, in the license's timezone), and lifetime sums to hold against the
# stored LicenseBalance. One pass over the ledger.
_RECONCILE_TOTALS_SQL = """
WITH lic AS (
    SELECT l.id, l.key, l.name, l.timezone,
           (%(start)s::timestamp AT TIME ZONE l.timezone) AS start_at,
           (%(end)s::timestamp AT TIME ZONE l.timezone) AS end_at
    FROM accounts_license AS l
    WHERE %(license_id)s::bigint IS NULL OR l.id = %(license_id)s::bigint
),
sums AS (
    SELECT e.license_id,
        coalesce(sum(e.amount) FILTER (WHERE e.occurred_at < lic.start_at), 0) AS opening,
        coalesce(sum(e.amount) FILTER (WHERE e.kind = 'purchase'
            AND e.occurred_at >= lic.start_at AND e.occurred_at < lic.end_at), 0) AS purchases,
        coalesce(-sum(e.amount) FILTER (WHERE e.kind = 'usage'
            AND e.occurred_at >= lic.start_at AND e.occurred_at < lic.end_at), 0) AS usage,
        coalesce(sum(e.amount) FILTER (WHERE e.kind = 'refund'
            AND e.occurred_at >= lic.start_at AND e.occurred_at < lic.end_at), 0) AS refunds,
        coalesce(sum(e.amount) FILTER (WHERE e.occurred_at < lic.end_at), 0) AS closing,
        count(*) FILTER (WHERE e.occurred_at >= lic.start_at AND e.occurred_at < lic.end_at)
            AS month_entries,
        count(*) FILTER (WHERE e.occurred_at < lic.end_at) AS entries_to_month_end,
        coalesce(sum(e.amount), 0) AS balance,
        coalesce(sum(e.amount) FILTER (WHERE e.kind = 'purchase'), 0) AS total_purchased,
        coalesce(-sum(e.amount) FILTER (WHERE e.kind = 'usage'), 0) AS total_spent,
        coalesce(sum(e.amount) FILTER (WHERE e.kind = 'refund'), 0) AS total_refunded,
        coalesce(sum(e.api_calls), 0) AS api_calls,
        coalesce(sum(e.tokens) FILTER (WHERE e.kind = 'usage' AND e.service = 'ai_data'), 0)
            AS input_tokens,
        coalesce(sum(e.tokens) FILTER (WHERE e.kind = 'usage' AND e.service = 'ai_data_cached'), 0)
            AS cached_tokens,
        coalesce(sum(e.tokens) FILTER (WHERE e.kind = 'usage' AND e.service = 'ai_data_completion'), 0)
            AS completion_tokens,
        coalesce(sum(e.images) FILTER (WHERE e.kind = 'usage'), 0) AS images,
        coalesce(-sum(e.amount) FILTER (WHERE e.kind = 'usage' AND e.service = 'ai_images'), 0)
            AS images_spent,
        count(*) AS entries
    FROM lic JOIN billing_ledgerentry AS e ON e.license_id = lic.id
    GROUP BY e.license_id
)
SELECT lic.id, lic.key, lic.name, lic.timezone,
       s.opening, s.purchases, s.usage, s.refunds, s.closing, s.month_entries,
       s.entries_to_month_end,
       s.balance, s.total_purchased, s.total_spent, s.total_refunded, s.api_calls,
       s.input_tokens, s.cached_tokens, s.completion_tokens, s.images, s.images_spent,
       s.entries,
       b.license_id IS NOT NULL AS has_balance_row,
       b.balance, b.total_purchased, b.total_spent, b.total_refunded, b.api_calls,
       b.input_tokens, b.cached_tokens, b.completion_tokens, b.images, b.images_spent,
       b.entries
FROM lic
LEFT JOIN sums AS s ON s.license_id = lic.id
LEFT JOIN billing_licensebalance AS b ON b.license_id = lic.id
ORDER BY lic.name, lic.id
"""

# The month's daily rollups against the entries of the same local days, both ways round:
# a rollup that is off, a day with entries but no rollup, a rollup with no entries.
_RECONCILE_ROLLUPS_SQL = """
WITH lic AS (
    SELECT l.id, l.timezone,
           (%(start)s::timestamp AT TIME ZONE l.timezone) AS start_at,
           (%(end)s::timestamp AT TIME ZONE l.timezone) AS end_at
    FROM accounts_license AS l
    WHERE %(license_id)s::bigint IS NULL OR l.id = %(license_id)s::bigint
),
ent AS (
    SELECT e.license_id, (e.occurred_at AT TIME ZONE lic.timezone)::date AS day, e.kind,
           e.service, sum(e.amount) AS amount, sum(e.tokens) AS tokens,
           sum(e.images) AS images, sum(e.api_calls) AS api_calls, count(*) AS entries
    FROM lic JOIN billing_ledgerentry AS e ON e.license_id = lic.id
        AND e.occurred_at >= lic.start_at AND e.occurred_at < lic.end_at
    GROUP BY 1, 2, 3, 4
),
rol AS (
    SELECT r.license_id, r.day, r.kind, r.service, r.amount, r.tokens, r.images,
           r.api_calls, r.entries
    FROM lic JOIN billing_dailyrollup AS r ON r.license_id = lic.id
    WHERE r.day >= %(start)s::date AND r.day < %(end)s::date
)
SELECT license_id, day, kind, service,
       rol.amount, ent.amount, rol.tokens, ent.tokens, rol.images, ent.images,
       rol.api_calls, ent.api_calls, rol.entries, ent.entries
FROM ent FULL OUTER JOIN rol USING (license_id, day, kind, service)
WHERE coalesce(rol.amount, 0) <> coalesce(ent.amount, 0)
   OR coalesce(rol.tokens, 0) <> coalesce(ent.tokens, 0)
   OR coalesce(rol.images, 0) <> coalesce(ent.images, 0)
   OR coalesce(rol.api_calls, 0) <> coalesce(ent.api_calls, 0)
   OR coalesce(rol.entries, 0) <> coalesce(ent.entries, 0)
ORDER BY license_id, day, kind, service
"""

# Refunds that break invariant 4 (more than the charge, or not a usage charge of the same
# license). The database refuses both on insert; the report still looks, whatever the date.
_RECONCILE_REFUNDS_SQL = """
SELECT r.license_id, r.refund_of_id, c.kind, c.license_id, -c.amount, sum(r.amount)
FROM billing_ledgerentry AS r
JOIN billing_ledgerentry AS c ON c.id = r.refund_of_id
WHERE r.refund_of_id IS NOT NULL
  AND (%(license_id)s::bigint IS NULL OR r.license_id = %(license_id)s::bigint)
GROUP BY r.license_id, r.refund_of_id, c.kind, c.license_id, c.amount
HAVING sum(r.amount) > -c.amount OR c.kind <> 'usage' OR c.license_id <> r.license_id
"""

_STORED_TOTALS = (
    "balance",
    "total_purchased",
    "total_spent",
    "total_refunded",
    "api_calls",
    "input_tokens",
    "cached_tokens",
    "completion_tokens",
    "images",
    "images_spent",
    "entries",
)
_ROLLUP_MEASURES = ("amount", "tokens", "images", "api_calls", "entries")


def reconciliation_month(*, month: date, license: License | None = None) -> ReconciliationReport:
    """Per license, for one month in its own timezone: opening balance, purchases, usage,
    refunds, closing balance, and every stored figure (LicenseBalance totals, the month's
    DailyRollup rows) that differs from the sum of the ledger entries it stands for.

    A license appears when it has entries up to the month's end, or anything differs.
    """
    month = month.replace(day=1)
    params = {
        "start": month.isoformat(),
        "end": _next_month(month).isoformat(),
        "license_id": license.pk if license is not None else None,
    }
    rows: dict[int, ReconciliationRow] = {}
    with connection.cursor() as cursor:
        cursor.execute(_RECONCILE_TOTALS_SQL, params)
        for rec in cursor.fetchall():
            license_id, key, name, tz = rec[:4]
            (opening, purchases, usage, refunds, closing, month_entries, to_end) = rec[4:11]
            n = len(_STORED_TOTALS)
            ledger = dict(zip(_STORED_TOTALS, rec[11 : 11 + n], strict=True))
            has_row = rec[11 + n]
            stored = dict(zip(_STORED_TOTALS, rec[12 + n : 12 + 2 * n], strict=True))
            row = ReconciliationRow(
                license_id=license_id,
                key=key,
                name=name,
                timezone=tz,
                opening=quantize_money(opening or 0),
                purchases=quantize_money(purchases or 0),
                usage=quantize_money(usage or 0),
                refunds=quantize_money(refunds or 0),
                closing=quantize_money(closing or 0),
                month_entries=month_entries or 0,
                entries_to_month_end=to_end or 0,
                ledger_balance=quantize_money(ledger["balance"] or 0),
                stored_balance=stored["balance"] if has_row else None,
            )
            for name_, ledger_value in ledger.items():
                ledger_value = ledger_value or 0
                # No balance row is the same as an all-zero one (nothing was ever posted).
                stored_value = stored[name_] if has_row else 0
                if stored_value != ledger_value:
                    row.differences.append(Difference(name_, stored[name_], ledger_value))
            rows[license_id] = row

        cursor.execute(_RECONCILE_ROLLUPS_SQL, params)
        for rec in cursor.fetchall():
            license_id, day, kind, service = rec[:4]
            pairs = rec[4:]
            label = f"rollup {day.isoformat()} {kind}{' ' + service if service else ''}"
            for i, measure in enumerate(_ROLLUP_MEASURES):
                stored_value, ledger_value = pairs[2 * i], pairs[2 * i + 1]
                if (stored_value or 0) != (ledger_value or 0):
                    rows[license_id].differences.append(
                        Difference(f"{label} {measure}", stored_value, ledger_value)
                    )

        cursor.execute(_RECONCILE_REFUNDS_SQL, params)
        for (
            license_id,
            charge_id,
            charge_kind,
            charge_license,
            charged,
            refunded,
        ) in cursor.fetchall():
            if charge_kind != LedgerEntry.Kind.USAGE or charge_license != license_id:
                what = f"refund of entry #{charge_id}: not a usage charge of this license"
            else:
                what = f"refunds of entry #{charge_id} exceed the charge"
            rows[license_id].differences.append(Difference(what, refunded, charged))

    kept = [row for row in rows.values() if row.entries_to_month_end or row.differences]
    return ReconciliationReport(month=month, rows=kept, generated_at=timezone.now())
