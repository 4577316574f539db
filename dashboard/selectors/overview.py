"""The overview (the customer dashboard): every section of docs/product.md as one `Dashboard`,
composed from billing's totals and rollups and usage's sync state.

The dashboard's numbers come from the license's totals (LicenseBalance) and its daily
rollups (DailyRollup, already bucketed by the license's local day), never from scanning
the ledger: only the recent-transactions table reads LedgerEntry, by its index
(license, -occurred_at, -id), and the paid/promotional split reads the open credit grants
(a few rows, index credit_grant_open, read with the basis). So the page costs the same few queries for ten entries or
ten million (docs/invariants.md, 9: cost independent of history).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db.models import BigIntegerField, Case, DateField, F, QuerySet, Sum, When
from django.db.models.functions import Cast, TruncMonth

from accounts.models import License
from billing.credits.selectors import CreditBalances
from billing.forecast import Forecast, forecast_from, forecast_window
from billing.ledger.bridge import bridge_lifetime
from billing.ledger.kinds import MOVEMENTS_BY_NAME, Bridge, Movement
from billing.models import DailyRollup, LedgerEntry
from billing.money import ZERO, quantize_money
from dashboard.charts import Chart, daily_chart, month_starts, monthly_chart
from dashboard.formatting import MONTH_ABBR
from dashboard.selectors.basis import DashboardBasis, Freshness, dashboard_basis
from dashboard.selectors.prices import BulkCost, Estimate, bulk_costs, estimates
from dashboard.selectors.transactions import TransactionRow, transactions_recent
from portal.sql import CompiledQuery

# docs/product.md: data refreshes automatically every 5 minutes (static/js/dashboard.js).
AUTO_REFRESH_SECONDS = 5 * 60


@dataclass(frozen=True)
class Dashboard:
    today: date
    timezone: str
    balance: Decimal
    threshold: Decimal
    # The balance explained over the license's life (billing.ledger.bridge_lifetime): the
    # explanation line iterates its terms, and Total Purchased / Total Spent are its
    # purchases (gross of card refunds, docs/product.md) and usage.
    bridge: Bridge
    # The balance split into paid and promotional credit, and what expires next.
    credit: CreditBalances
    api_calls: int
    input_tokens: int
    cached_tokens: int
    completion_tokens: int
    images: int
    # Ledger lines, as All transactions and the CSV list them: a call charged for two
    # services is two transactions and one API call.
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
    def total_purchased(self) -> Decimal:
        """Gross: every purchase, before refunds to the card (shown beside it, net)."""
        return self.bridge.purchases

    @property
    def purchase_refunds(self) -> Decimal:
        return self.bridge.purchase_refunds

    @property
    def net_purchased(self) -> Decimal:
        return self.bridge.purchases - self.bridge.purchase_refunds

    @property
    def total_spent(self) -> Decimal:
        return self.bridge.usage

    @property
    def bridge_terms(self) -> list[tuple[Movement, Decimal]]:
        """The bridge's terms that moved money, in its order (the explanation line)."""
        return [(movement, amount) for movement, amount in self.bridge.terms() if amount]

    @property
    def movements(self) -> dict[str, Movement]:
        """The movements by name, for the words a template puts beside a figure."""
        return MOVEMENTS_BY_NAME

    @property
    def next_expiry_label(self) -> str:
        """When the next credit expires, in the license's timezone: "at the end of Jun 20,
        2025" when it is due at a local midnight (a grant's last day, as granted), else the
        day and time ("on Jun 21, 2025 at 14:30"); "" when nothing is due to expire."""
        expiry = self.credit.next_expiry
        if expiry is None:
            return ""
        local = expiry.at.astimezone(ZoneInfo(self.timezone))
        if (local.hour, local.minute, local.second) == (0, 0, 0):
            last = local.date() - timedelta(days=1)
            return f"at the end of {MONTH_ABBR[last.month - 1]} {last.day}, {last.year}"
        return f"on {MONTH_ABBR[local.month - 1]} {local.day}, {local.year} at {local:%H:%M}"

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
        """docs/product.md's definition: Total Spent ÷ Total Transactions (ledger lines)."""
        if not self.total_transactions:
            return ZERO
        return quantize_money(self.total_spent / self.total_transactions)

    @property
    def average_per_call(self) -> Decimal:
        """Total Spent ÷ API Calls Made: the typical spend of one call."""
        if not self.api_calls:
            return ZERO
        return quantize_money(self.total_spent / self.api_calls)

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


_WINDOW_FIELDS = ("bucket", "service", "amount", "tokens", "images")


def _chart_window(*, license_id: int, start: date, end: date, days_from: date) -> QuerySet:
    """Usage from `start` to `end` summed by service into buckets: each day from
    `days_from` on, and each month before it."""
    return (
        DailyRollup.objects.for_license(License(pk=license_id))
        .filter(kind=LedgerEntry.Kind.USAGE, day__gte=start, day__lte=end)
        .annotate(
            bucket=Case(
                When(day__gte=days_from, then=F("day")),
                # date_trunc works on timestamps: cast back, or the CASE is a timestamp.
                default=Cast(TruncMonth("day"), DateField()),
            )
        )
        .values_list("bucket", "service")
        # PostgreSQL sums bigints as numeric: counts are whole, read them as int.
        .annotate(
            amount=Sum("amount"),
            tokens=Cast(Sum("tokens"), BigIntegerField()),
            images=Cast(Sum("images"), BigIntegerField()),
        )
        .order_by()
    )


# Built by the ORM once per process (portal/sql.py): building it was most of its cost.
_CHART_WINDOW = CompiledQuery(
    "dashboard chart window",
    _chart_window,
    license_id=-1,
    start=date(1901, 1, 1),
    end=date(1901, 1, 2),
    days_from=date(1901, 1, 3),
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
    window_rows = [
        dict(zip(_WINDOW_FIELDS, row, strict=True))
        for row in _CHART_WINDOW.rows(
            license_id=license.pk, start=months[0], end=today, days_from=forecast_start
        )
    ]
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
        bridge=bridge_lifetime(totals),
        credit=basis.credit,
        api_calls=totals.api_calls,
        input_tokens=totals.input_tokens,
        cached_tokens=totals.cached_tokens,
        completion_tokens=totals.completion_tokens,
        images=totals.images,
        total_transactions=totals.entries,
        warns_low_balance=totals.warns_low_balance(license.low_balance_threshold),
        image_spent=totals.images_spent,
        text_spent=totals.total_spent - totals.images_spent,
        last_updated=basis.freshness.last_updated,
        estimates=estimates(totals.balance, prices),
        bulk_costs=bulk_costs(prices),
        monthly=monthly_chart(months, per_day),
        daily=daily_chart(today, per_day),
        recent=transactions_recent(license),
        forecast=forecast,
        as_of=basis.now,
        stale_after=basis.freshness.stale_after,
    )
