"""Reads for the customer pages: everything the dashboard shows, composed from billing's
totals and rollups and usage's sync state.

The dashboard's numbers come from the license's totals (LicenseBalance) and its daily
rollups (DailyRollup, already bucketed by the license's local day), never from scanning
the ledger: only the recent-transactions table reads LedgerEntry, by its index
(license, -occurred_at, -id). So the page costs the same few queries for ten entries or
ten million (docs/invariants.md, 9: cost independent of history).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Case, DateField, F, OuterRef, QuerySet, Sum, When
from django.db.models.functions import Cast, TruncMonth
from django.utils import timezone

from accounts.models import License
from billing.forecast import Forecast, forecast_from, forecast_window
from billing.models import DailyRollup, LedgerEntry, LicenseBalance, Service
from billing.money import (
    PER_MILLION,
    PER_TEN_THOUSAND,
    ZERO,
    format_money,
    quantize_money,
    units_affordable,
)
from billing.prices import prices_by_service, prices_current, prices_in_effect
from dashboard.formatting import CENT, format_age, format_count, format_price
from payments.selectors import is_card_purchase
from portal.sql import ANY_MOMENT, CompiledQuery
from usage.selectors import known_current_at_subquery, sync_state_get

RECENT_TRANSACTIONS = 100
DESCRIPTION_CHARS = 50  # docs/product.md: descriptions are cut to 50 characters in the table
# The labels of docs/product.md ("Jun 30", "Jun 2025", "Mon") in English whatever the server's locale;
# plain tuples because Django's dateformat costs ~30 µs a call, 100+ times a page.
MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# docs/product.md: data refreshes automatically every 5 minutes (static/js/dashboard.js).
AUTO_REFRESH_SECONDS = 5 * 60
DAILY_DAYS = 30
MONTHLY_MONTHS = 12


# --- plain values the templates render ---------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: a local day or a local month and what was spent in it."""

    start: date
    label: str  # "30" (day of month) or "Jun 2025"
    amount: Decimal  # usage spending, exact (6 places)
    height: Decimal  # 0–100, percent of the chart's scale
    # What the tooltip names: "Jun 30" / "Jun 2025". The amount beside it is written by the
    # template's |chart_money, the one precision rule for chart labels.
    name: str
    weekday: str = ""  # "Mon" (daily bars)
    is_today: bool = False

    @property
    def has_usage(self) -> bool:
        return self.amount > 0

    @property
    def y(self) -> Decimal:
        """Top of the bar in a 0–100 viewBox whose y axis points down."""
        return 100 - self.height

    # Date labels for the templates, here rather than with Django's |date filter, which
    # costs ~30 µs a call and was called about a hundred times per dashboard.
    @property
    def day_key(self) -> str:
        return self.start.isoformat()  # "2025-06-30"

    @property
    def month_key(self) -> str:
        return self.start.isoformat()[:7]  # "2025-06"

    @property
    def month_abbr(self) -> str:
        return MONTH_ABBR[self.start.month - 1]  # "Jun"

    @property
    def year(self) -> str:
        return str(self.start.year)

    @property
    def year_short(self) -> str:
        return f"{self.start.year % 100:02d}"  # "25"

    @property
    def date_long(self) -> str:
        return f"{MONTH_ABBR[self.start.month - 1]} {self.start.day}, {self.start.year}"


@dataclass(frozen=True)
class Tick:
    value: Decimal  # a whole number of cents (nice_axis), written with |chart_money
    position: Decimal  # percent of the plot's height, from the bottom

    @property
    def y(self) -> Decimal:
        """In a 0–100 viewBox whose y axis points down."""
        return 100 - self.position


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    total: Decimal
    scale: Decimal  # the amount a full-height bar stands for
    ticks: list[Tick]

    @property
    def is_empty(self) -> bool:
        return self.total == 0

    @property
    def peak(self) -> Bar | None:
        return max(self.bars, key=lambda b: b.amount) if not self.is_empty else None


@dataclass(frozen=True)
class Estimate:
    """How much of one service the balance still buys at the price in effect now."""

    service: str
    label: str
    units: int
    unit_name: str
    price_label: str  # "$0.0001 per image", "$0.60 per 1M tokens"
    unit_price: Decimal | None


@dataclass(frozen=True)
class BulkCost:
    service: str
    label: str
    quantity_label: str  # "1M tokens" / "10,000 images"
    cost: Decimal | None  # None when no price is in effect
    unit_price: Decimal | None
    unit_name: str  # "image" / "token"


@dataclass(frozen=True)
class TransactionRow:
    """One line of Recent Transaction History, ready to print (docs/product.md's formats)."""

    id: int
    occurred_at: datetime  # in the license's timezone
    date_label: str  # "Jun 30, 14:30"
    kind: str
    kind_label: str  # "Purchase" / "Usage" / "Refund"
    service: str
    amount: Decimal  # signed, as in the ledger
    amount_label: str  # absolute value: the colour says the direction
    tokens_label: str  # "1,234,567", "" for none
    images_label: str
    description: str
    description_short: str  # cut to 50 characters ("…" included) when longer
    has_receipt: bool = False  # a card purchase: its receipt is at dashboard:receipt/<id>

    @property
    def direction(self) -> str:
        """ "in" (green), "out" (red) or "" for a zero charge (a failed call)."""
        return "in" if self.amount > 0 else "out" if self.amount < 0 else ""

    @property
    def is_cut(self) -> bool:
        return self.description_short != self.description


@dataclass(frozen=True)
class Freshness:
    """How old the usage data is: the last sync that reached the end of what the upstream
    had, seen from `as_of` (when the page was built)."""

    last_updated: datetime | None
    as_of: datetime | None
    stale_after: timedelta = timedelta(minutes=15)

    @property
    def data_age(self) -> timedelta | None:
        if self.last_updated is None or self.as_of is None:
            return None
        return max(self.as_of - self.last_updated, timedelta(0))

    @property
    def data_age_label(self) -> str:
        """ "40 minutes ago" ("" before the first sync)."""
        age = self.data_age
        return "" if age is None else format_age(age.total_seconds())

    @property
    def is_stale(self) -> bool:
        """The usage service has not been reached for a while: the page shows the last data
        it has, with a notice (the numbers catch up by themselves when it answers again)."""
        age = self.data_age
        return age is not None and age > self.stale_after


@dataclass(frozen=True)
class Dashboard:
    today: date
    timezone: str
    balance: Decimal
    threshold: Decimal
    total_purchased: Decimal
    total_spent: Decimal
    total_refunded: Decimal
    api_calls: int
    input_tokens: int
    cached_tokens: int
    completion_tokens: int
    images: int
    total_transactions: int
    # The flashing warning (LicenseBalance.warns_low_balance): low after some activity; a
    # new license is welcomed with "Purchase Credits" instead.
    warns_low_balance: bool
    image_spent: Decimal
    text_spent: Decimal
    last_updated: datetime | None
    estimates: list[Estimate]
    bulk_costs: list[BulkCost]
    monthly: Chart
    daily: Chart
    recent: list[TransactionRow]
    forecast: Forecast
    # When the page was built, and how old the data may get before the page says so.
    as_of: datetime | None = None
    stale_after: timedelta = timedelta(minutes=15)

    @property
    def freshness(self) -> Freshness:
        return Freshness(self.last_updated, self.as_of, self.stale_after)

    @property
    def data_age(self) -> timedelta | None:
        return self.freshness.data_age

    @property
    def data_age_label(self) -> str:
        return self.freshness.data_age_label

    @property
    def is_stale(self) -> bool:
        return self.freshness.is_stale

    @property
    def tokens(self) -> int:
        """Tokens Used: input + cached + completion."""
        return self.input_tokens + self.cached_tokens + self.completion_tokens

    @property
    def credits_used(self) -> Decimal:
        """Credits Used "should match" Total Spent (docs/product.md): it is the same number."""
        return self.total_spent

    @property
    def average_per_transaction(self) -> Decimal:
        """docs/product.md's definition: Total Spent ÷ Total Transactions (calls, purchases,
        credits and refunds), the typical spend per call."""
        if not self.total_transactions:
            return ZERO
        return quantize_money(self.total_spent / self.total_transactions)

    @property
    def image_share(self) -> Decimal:
        """Percent of usage spending on images (for the breakdown bar), 0 with no spending."""
        spent = self.image_spent + self.text_spent
        if spent <= 0:
            return Decimal(0)
        return (self.image_spent * 100 / spent).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

    @property
    def text_share(self) -> Decimal:
        if self.image_spent + self.text_spent <= 0:
            return Decimal(0)
        return Decimal(100) - self.image_share

    @property
    def is_low_balance(self) -> bool:
        """Below the license's threshold (default $1.00): red balance and the warning box."""
        return self.balance < self.threshold

    @property
    def has_activity(self) -> bool:
        return self.total_transactions > 0


# --- the selector ------------------------------------------------------------------------

_ESTIMATES = (
    # service, label, unit name, price shown per
    (Service.AI_IMAGES, "Image searches", "images", "image"),
    (Service.AI_DATA, "AI input tokens", "tokens", "1M tokens"),
    (Service.AI_DATA_COMPLETION, "AI completion tokens", "tokens", "1M tokens"),
    (Service.AI_DATA_CACHED, "AI cached tokens", "tokens", "1M tokens"),
)
_BULK = (
    (Service.AI_IMAGES, "Image processing", "10,000 images", PER_TEN_THOUSAND),
    (Service.AI_DATA, "AI input tokens", "1M tokens", PER_MILLION),
    (Service.AI_DATA_COMPLETION, "AI completion tokens", "1M tokens", PER_MILLION),
    (Service.AI_DATA_CACHED, "AI cached tokens", "1M tokens", PER_MILLION),
)


def local_today(license: License, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(license.tzinfo).date()


def month_starts(today: date, months: int = MONTHLY_MONTHS) -> list[date]:
    """The first days of the `months` months ending with today's month, oldest first."""
    index = today.year * 12 + today.month - 1
    return [date(i // 12, i % 12 + 1, 1) for i in range(index - months + 1, index + 1)]


@dataclass(frozen=True)
class DashboardBasis:
    """What the whole dashboard is computed from, in one small query whatever the history:
    the license's totals, the prices in effect and its last sync.

    Everything else the page shows is derived from the ledger those totals sum (the daily
    rollups and the recent entries, kept in the same transaction as the totals), from the
    local day and from the license's own settings, so `sections_version` names exactly what
    the ledger's sections show (the render cache's key, dashboard/render_cache.py).
    """

    license: License
    now: datetime
    today: date  # in the license's timezone
    totals: LicenseBalance
    prices: dict[str, Decimal]
    freshness: Freshness

    @property
    def timezone(self) -> str:
        return self.license.timezone

    @property
    def has_activity(self) -> bool:
        return self.totals.has_activity

    @property
    def ledger_version(self) -> tuple[int, datetime | None, Decimal]:
        """Changes with every posting: the ledger is append-only, and the statement that
        inserts entries adds their count to `entries` and sets `updated_at` in the same
        transaction (billing.ledger.post_entries; the totals' rebuild sets both too). A
        license with no entries yet has no row: (0, None, 0)."""
        totals = self.totals
        return (totals.entries, totals.updated_at if totals.entries else None, totals.balance)

    def sections_version(self) -> tuple:
        """Everything the ledger's sections (balance, estimates and forecast, recent
        transactions, analytics, the charts, the low-balance warning) depend on: the
        license, its ledger, its local day and timezone (which days the rollups and the
        charts' bars are), its alert threshold and the prices in effect. Not the viewer,
        not the time of day, not the last sync: those parts of the page are drawn on each
        request. A new input of dashboard_from belongs here too."""
        return (
            self.license.pk,
            self.ledger_version,
            self.today,
            self.license.timezone,
            self.license.low_balance_threshold,
            tuple(sorted(self.prices.items())),
        )


def _basis(*, license_id: int, moment: datetime) -> QuerySet[LicenseBalance]:
    """The license's totals row with the prices in effect at `moment` and its last sync."""
    prices = prices_in_effect(moment)
    return (
        LicenseBalance.objects.for_license(License(pk=license_id))
        .annotate(
            basis_price_services=ArraySubquery(prices.values("service")),
            basis_price_units=ArraySubquery(prices.values("unit_price")),
            basis_known_current_at=known_current_at_subquery(OuterRef("license")),
        )
        .order_by()
    )


# Built by the ORM once per process, for a license and a moment that stand for any
# (portal/sql.py): building and compiling its three subqueries took more Python than
# anything else on a page whose sections were kept, and only the license and the moment
# differ between requests.
_BASIS = CompiledQuery("dashboard basis", _basis, license_id=-1, moment=ANY_MOMENT)


def dashboard_basis(*, license: License, now: datetime | None = None) -> DashboardBasis:
    """The totals, the prices in effect and the last sync in one query (one snapshot: what
    is read after it, the rollups and the recent entries, is at least as new, so content
    rendered under a version never shows money older than that version)."""
    now = now or timezone.now()
    # Routed like any read of LicenseBalance (the replica on the pages that allow it,
    # portal/db_router.py).
    row: Any = next(iter(_BASIS.rows(license_id=license.pk, moment=now)), None)  # the basis_*
    if row is not None:
        totals = row
        current = prices_by_service(
            zip(row.basis_price_services, row.basis_price_units, strict=True)
        )
        known_current_at = row.basis_known_current_at
    else:  # no entries yet, so no totals row to read the rest with
        totals = LicenseBalance(license=license)
        current = prices_current(now)
        known_current_at = sync_state_get(license).known_current_at
    return DashboardBasis(
        license=license,
        now=now,
        today=local_today(license, now),
        totals=totals,
        prices=current,
        freshness=Freshness(
            last_updated=known_current_at,
            as_of=now,
            stale_after=timedelta(seconds=settings.USAGE_STALE_AFTER_SECONDS),
        ),
    )


def dashboard_get(*, license: License, now: datetime | None = None) -> Dashboard:
    """Everything the dashboard shows, in a fixed number of queries (see the module note)."""
    return dashboard_from(dashboard_basis(license=license, now=now))


def dashboard_from(basis: DashboardBasis) -> Dashboard:
    """The dashboard of a basis already read: two more queries (rollups, recent entries)."""
    license, today, totals, prices = basis.license, basis.today, basis.totals, basis.prices

    # Usage spending from the daily rollups over the chart window, summed by PostgreSQL
    # into buckets: one per local day of the last 30 days (the daily bars and the forecast)
    # and one per month before that (the monthly bars), by service. At most 30 × 4 + 12 × 4
    # rows leave the database whatever the history, instead of every day of the year.
    months = month_starts(today)
    forecast_start, _ = forecast_window(today)
    window_rows = list(
        DailyRollup.objects.for_license(license)
        .filter(kind=LedgerEntry.Kind.USAGE, day__gte=months[0], day__lte=today)
        .annotate(
            bucket=Case(
                When(day__gte=forecast_start, then=F("day")),
                # date_trunc works on timestamps: cast back, or the CASE is a timestamp.
                default=Cast(TruncMonth("day"), DateField()),
            )
        )
        .values("bucket", "service")
        .annotate(amount=Sum("amount"), tokens=Sum("tokens"), images=Sum("images"))
        .order_by()
    )
    # Rollups hold usage as negative amounts; a bucket before the forecast window is a month.
    per_day: dict[date, Decimal] = defaultdict(lambda: ZERO)
    for row in window_rows:
        per_day[row["bucket"]] -= row["amount"] or ZERO
    forecast = forecast_from(
        (row for row in window_rows if row["bucket"] >= forecast_start),
        balance=totals.balance,
        today=today,
    )

    return Dashboard(
        today=today,
        timezone=license.timezone,
        balance=totals.balance,
        threshold=license.low_balance_threshold,
        total_purchased=totals.total_purchased,
        total_spent=totals.total_spent,
        total_refunded=totals.total_refunded,
        api_calls=totals.api_calls,
        input_tokens=totals.input_tokens,
        cached_tokens=totals.cached_tokens,
        completion_tokens=totals.completion_tokens,
        images=totals.images,
        total_transactions=totals.total_transactions,
        warns_low_balance=totals.warns_low_balance(license.low_balance_threshold),
        image_spent=totals.images_spent,
        text_spent=totals.total_spent - totals.images_spent,
        last_updated=basis.freshness.last_updated,
        estimates=_estimates(totals.balance, prices),
        bulk_costs=bulk_costs(prices),
        monthly=_monthly_chart(months, per_day),
        daily=_daily_chart(today, per_day),
        recent=transactions_recent(license),
        forecast=forecast,
        as_of=basis.now,
        stale_after=basis.freshness.stale_after,
    )


def transactions_recent(license: License, limit: int = RECENT_TRANSACTIONS) -> list[TransactionRow]:
    """The newest entries, newest first, read by the index (license, -occurred_at, -id)."""
    # Plain tuples, not model instances: a hundred of them on every dashboard.
    entries = (
        LedgerEntry.objects.for_license(license)
        .order_by("-occurred_at", "-id")
        .values_list(
            "id",
            "kind",
            "service",
            "amount",
            "tokens",
            "images",
            "description",
            "occurred_at",
            "external_id",
        )[:limit]
    )
    tz = license.tzinfo
    kinds = dict(LedgerEntry.Kind.choices)
    rows = []
    for (
        entry_id,
        kind,
        service,
        amount,
        tokens,
        images,
        description,
        occurred_at,
        external_id,
    ) in entries:
        local = occurred_at.astimezone(tz)
        rows.append(
            TransactionRow(
                id=entry_id,
                occurred_at=local,
                date_label=f"{MONTH_ABBR[local.month - 1]} {local.day}, {local:%H:%M}",
                kind=kind,
                kind_label=kinds.get(kind, kind),
                service=service,
                amount=amount,
                amount_label=format_money(abs(amount)),
                tokens_label=format_count(tokens) if tokens else "",
                images_label=format_count(images) if images else "",
                description=description,
                description_short=_cut(description),
                has_receipt=kind == LedgerEntry.Kind.PURCHASE and is_card_purchase(external_id),
            )
        )
    return rows


def _cut(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    """At most `limit` characters, the last one "…" when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bulk_costs(prices: dict[str, Decimal]) -> list[BulkCost]:
    """docs/product.md's "Cost per usage": each price per 1M tokens or per 10,000 images."""
    return [
        BulkCost(
            service=service,
            label=label,
            quantity_label=quantity_label,
            cost=prices[service] * per if service in prices else None,
            unit_price=prices.get(service),
            unit_name="image" if service == Service.AI_IMAGES else "token",
        )
        for service, label, quantity_label, per in _BULK
    ]


def cached_saving_percent(prices: dict[str, Decimal]) -> Decimal | None:
    """How much less a cached token costs than an input token, in percent, at these prices:
    87.5 at the guide's $0.075 and $0.60 per 1M. None if either price is missing or zero."""
    cached, regular = prices.get(Service.AI_DATA_CACHED), prices.get(Service.AI_DATA)
    if cached is None or not regular:
        return None
    saving = (1 - cached / regular) * 100
    return saving.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP).normalize()


def _estimates(balance: Decimal, prices: dict[str, Decimal]) -> list[Estimate]:
    estimates = []
    for service, label, unit_name, per in _ESTIMATES:
        unit_price = prices.get(service)
        if unit_price is None:
            price_label = "no price in effect"
        elif per == "image":
            price_label = f"{format_price(unit_price)} per image"
        else:
            price_label = f"{format_price(unit_price * PER_MILLION)} per {per}"
        estimates.append(
            Estimate(
                service=service,
                label=label,
                units=units_affordable(balance, unit_price) if unit_price is not None else 0,
                unit_name=unit_name,
                price_label=price_label,
                unit_price=unit_price,
            )
        )
    return estimates


def _height(amount: Decimal, scale: Decimal) -> Decimal:
    """Percent of the chart's height, to 0.01; a bar with any spending shows at least 1%."""
    if amount <= 0 or scale <= 0:
        return Decimal(0)
    percent = (amount * 100 / scale).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return min(max(percent, Decimal(1)), Decimal(100))


def nice_axis(peak: Decimal, max_steps: int = 5) -> tuple[Decimal, int]:
    """A dollar axis people can read: (step, number of steps), the step the smallest of
    1, 2, 2.5 or 5 × 10ⁿ that covers the peak in at most `max_steps` steps, and a whole
    number of cents (chart labels are cents: a $0.025 step would read "$0.03")."""
    if peak <= 0:
        return Decimal(1), 1
    exponent = max((peak / max_steps).adjusted(), -2)
    for power in (exponent, exponent + 1):
        for base in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5)):
            step = base.scaleb(power)
            if step % CENT:
                continue
            steps = int((peak / step).to_integral_value(rounding=ROUND_CEILING))
            if steps <= max_steps:
                return step, max(steps, 1)
    raise AssertionError("unreachable: 10ⁿ⁺¹ steps cover any peak")  # pragma: no cover


def _monthly_chart(months: list[date], per_day: dict[date, Decimal]) -> Chart:
    """`per_day` may hold a whole month's spending on its first day (dashboard_get's buckets
    before the last 30 days): either way each amount is added to its day's month."""
    spent: dict[date, Decimal] = defaultdict(lambda: ZERO)
    for day, amount in per_day.items():
        spent[day.replace(day=1)] += amount
    peak = max((spent[m] for m in months), default=ZERO)
    step, steps = nice_axis(peak)
    scale = step * steps
    bars = []
    for month in months:
        amount = quantize_money(spent[month])
        label = f"{MONTH_ABBR[month.month - 1]} {month.year}"
        bars.append(
            Bar(
                start=month,
                label=label,
                amount=amount,
                height=_height(amount, scale),
                name=label,
            )
        )
    ticks = axis_ticks(step, steps)
    return Chart(bars=bars, total=sum((b.amount for b in bars), ZERO), scale=scale, ticks=ticks)


def axis_ticks(step: Decimal, steps: int) -> list[Tick]:
    """The labelled lines of a dollar axis from nice_axis: $0 up to step × steps."""
    return [
        Tick(
            value=step * i,
            position=(Decimal(100) * i / steps).quantize(Decimal("0.01")),
        )
        for i in range(steps + 1)
    ]


def _daily_chart(today: date, per_day: dict[date, Decimal]) -> Chart:
    """Always 30 columns ending today; days without usage are $0 (gray)."""
    days = [today - timedelta(days=n) for n in range(DAILY_DAYS - 1, -1, -1)]
    amounts = {day: quantize_money(per_day.get(day, ZERO)) for day in days}
    # docs/product.md: bar heights are relative to the largest day, not to a rounded axis.
    scale = max(amounts.values(), default=ZERO)
    bars = [
        Bar(
            start=day,
            label=str(day.day),
            amount=amounts[day],
            height=_height(amounts[day], scale),
            name=f"{MONTH_ABBR[day.month - 1]} {day.day}",
            weekday=DAY_ABBR[day.weekday()],
            is_today=day == today,
        )
        for day in days
    ]
    return Chart(bars=bars, total=sum(amounts.values(), ZERO), scale=scale, ticks=[])
