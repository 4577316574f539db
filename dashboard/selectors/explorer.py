"""The usage explorer (Reports): a license's usage over a range of its choosing, by local day
or month and by service or endpoint, as a stacked bar chart and tables.

Read through billing.charges.selectors.usage_by_period (the API's usage endpoint reads the same),
which sums the rollups: the cost follows the range (at most 366 days, or three years of
months), not the length of the history. Here the buckets become what the page draws.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils.safestring import SafeString, mark_safe

from accounts.models import License
from billing.charges.selectors import usage_by_period
from billing.money import ZERO, format_money
from dashboard.charts import Tick, axis_ticks, month_starts, nice_axis
from dashboard.formatting import DAY_ABBR, MONTH_ABBR, format_chart_exact, format_chart_money

# Colours the chart tells apart (static/css/explorer.css, .series--0 … .series--6); with more
# groups than that, the smallest share the last colour as "Other".
MAX_SERIES = 7
OTHER = "Other"
NO_ENDPOINT = "(no endpoint recorded)"
AXIS_MIN_PEAK = Decimal("0.05")
MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class Series:
    """One service or endpoint over the whole range: the legend and the totals table."""

    group: str
    label: str
    index: int  # its colour
    amount: Decimal
    tokens: int
    images: int
    api_calls: int
    share: Decimal  # percent of the range's spending, to 0.1


@dataclass(frozen=True)
class Segment:
    """A series' part of one bar, in a 0–100 viewBox whose y axis points down."""

    index: int
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    """One local day or month: its bar (stacked by series) and its labels."""

    start: date
    label: str  # under the bar: "7" (a day) or "Jun" (a month)
    sublabel: str  # below that: "Jun" on a month's first day, the year under a month
    amount: Decimal
    amount_label: str  # "$1.23", "<$0.01", "$0.00"
    tooltip: str  # "Tue, Jun 7, 2025: $1.2345" (exact)
    amounts: list[Decimal]  # per series, in the series' order (the table's columns)
    segments: list[Segment]
    css: str = "bar"  # the bar's classes: used or zero, near the start or the end
    date_label: str = ""  # the per-period table's row: "Tue, Jun 7, 2025" / "June 2025"

    # A year's 365 columns are the page's main cost: through Django's template engine and
    # format_html (whose lazy-string checks run per argument) they took most of the page's
    # time. So their markup is written here, in one f-string each. Nothing in it needs
    # escaping: only numbers, ISO dates, month and weekday names and money written by
    # format_money / format_chart_money (a test holds that the page is well formed); the
    # text a customer or the upstream controls (endpoints) is rendered by the template.
    @property
    def bar_html(self) -> str:
        rects = "".join(
            f'<rect class="series--{seg.index}" x="0" y="{seg.y}" width="10" height="{seg.height}"/>'
            for seg in self.segments
        )
        return (
            f'<div class="{self.css}" tabindex="0" role="img" aria-label="{self.tooltip}"'
            f' data-period="{self.key}"><span class="bar__area"><svg viewBox="0 0 10 100"'
            f' preserveAspectRatio="none" focusable="false">{rects}</svg></span>'
            f'<span class="bar__label">{self.label}</span>'
            f'<span class="bar__sublabel">{self.sublabel}</span>'
            f'<span class="bar__tip">{self.tooltip}</span></div>'
        )

    @property
    def row_html(self) -> str:
        """The per-period table's row: the period, each series' amount, then the total."""
        cells = "".join(
            f'<td class="num money">{format_money(a)}</td>' for a in (*self.amounts, self.amount)
        )
        return f'<tr data-period="{self.key}"><th scope="row">{self.date_label}</th>{cells}</tr>'

    @property
    def has_usage(self) -> bool:
        return self.amount > 0

    @property
    def key(self) -> str:
        return self.start.isoformat()


@dataclass(frozen=True)
class Explorer:
    start: date
    end: date
    granularity: str
    group_by: str
    timezone: str
    series: list[Series]
    columns: list[Column]
    ticks: list[Tick]
    total: Decimal
    tokens: int
    images: int
    api_calls: int

    @property
    def is_empty(self) -> bool:
        return not self.series

    @property
    def bars_html(self) -> SafeString:
        """Every column's bar (Column.bar_html says why this markup is built here)."""
        return mark_safe("\n".join(c.bar_html for c in self.columns))  # noqa: S308

    @property
    def rows_html(self) -> SafeString:
        """The per-period table's rows, latest first."""
        return mark_safe("\n".join(c.row_html for c in reversed(self.columns)))  # noqa: S308

    @property
    def legend(self) -> list[tuple[int, str]]:
        """(colour, label) per colour the chart uses: the groups with a colour of their
        own, then "Other" when the smallest share one."""
        if len(self.series) <= MAX_SERIES:
            return [(s.index, s.label) for s in self.series]
        return [(s.index, s.label) for s in self.series[: MAX_SERIES - 1]] + [
            (MAX_SERIES - 1, OTHER)
        ]

    @property
    def peak(self) -> Column | None:
        return max(self.columns, key=lambda c: c.amount) if self.columns else None


def explorer_default_range(
    license: License, granularity: str, *, start: date | None = None, end: date | None = None
) -> tuple[date, date]:
    """The range asked for, its missing ends filled in: `end` is today (local), `start` 30
    days or 12 months (its month included) before `end`."""
    end = end or license.local_date()
    if start is None:
        start = month_starts(end)[0] if granularity == "month" else end - timedelta(days=29)
    return start, end


def _periods(start: date, end: date, granularity: str) -> list[date]:
    if granularity == "day":
        return [start + timedelta(days=n) for n in range((end - start).days + 1)]
    first = start.replace(day=1)
    months = (end.year - first.year) * 12 + end.month - first.month + 1
    return month_starts(end, months)


def _label(group: str, group_by: str) -> str:
    return group or NO_ENDPOINT if group_by == "endpoint" else group


def usage_explorer_get(
    *, license: License, start: date, end: date, granularity: str, group_by: str
) -> Explorer:
    """The explorer's chart and tables (UsageRangeError / UsageNotReady from the selector)."""
    buckets = usage_by_period(
        license=license, start=start, end=end, granularity=granularity, group_by=group_by
    )
    # Each group's totals over the range, largest spending first (the legend's order).
    totals: dict[str, list] = defaultdict(lambda: [ZERO, 0, 0, 0])
    for b in buckets:
        t = totals[b.group]
        t[0] += b.amount
        t[1] += b.tokens
        t[2] += b.images
        t[3] += b.api_calls
    ordered = sorted(totals, key=lambda g: (-totals[g][0], -totals[g][3], g))
    index_of = {
        group: min(i, MAX_SERIES - 1) if len(ordered) > MAX_SERIES else i
        for i, group in enumerate(ordered)
    }
    grand = sum((t[0] for t in totals.values()), ZERO)
    series: list[Series] = []
    for group in ordered:
        amount, tokens, images, calls = totals[group]
        series.append(
            Series(
                group=group,
                label=_label(group, group_by),
                index=index_of[group],
                amount=amount,
                tokens=tokens,
                images=images,
                api_calls=calls,
                share=_percent(amount, grand),
            )
        )

    per_period: dict[date, dict[str, Decimal]] = defaultdict(dict)
    for b in buckets:
        per_period[b.period][b.group] = b.amount
    periods = _periods(start, end, granularity)
    peak = max((sum(per_period[p].values(), ZERO) for p in periods), default=ZERO)
    # Cent steps at least: chart labels are cents, so a finer axis would read "<$0.01" twice.
    step, steps = nice_axis(max(peak, AXIS_MIN_PEAK))
    scale = step * steps
    columns = [
        _column(p, per_period[p], ordered, index_of, scale, granularity, i, len(periods))
        for i, p in enumerate(periods)
    ]
    ticks = axis_ticks(step, steps)
    return Explorer(
        start=start,
        end=end,
        granularity=granularity,
        group_by=group_by,
        timezone=license.timezone,
        series=series,
        columns=columns,
        ticks=ticks,
        total=grand,
        tokens=sum(s.tokens for s in series),
        images=sum(s.images for s in series),
        api_calls=sum(s.api_calls for s in series),
    )


def _percent(part: Decimal, whole: Decimal) -> Decimal:
    if whole <= 0:
        return Decimal(0)
    return (part * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _column(
    period: date,
    amounts: dict[str, Decimal],
    ordered: list[str],
    index_of: dict[str, int],
    scale: Decimal,
    granularity: str,
    position: int,
    count: int,
) -> Column:
    first = position == 0
    total = sum(amounts.values(), ZERO)
    # Stack from the baseline up, in the legend's order; groups sharing "Other" merge.
    stacked: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for group in ordered:
        if amounts.get(group):
            stacked[index_of[group]] += amounts[group]
    segments = []
    if total > 0 and scale > 0:
        # Geometry, not money: floats (a year has 365 bars to place). A bar with any
        # spending shows at least 1% of the plot, so it can be seen.
        factor = max(1.0, float(total) * 100 / float(scale)) / float(total)
        below = 0.0
        for index in sorted(stacked):
            height = float(stacked[index]) * factor
            segments.append(
                Segment(index=index, y=round(100 - below - height, 2), height=round(height, 2))
            )
            below += height
    if granularity == "day":
        label = str(period.day)
        sublabel = MONTH_ABBR[period.month - 1] if period.day == 1 or first else ""
        when = f"{DAY_ABBR[period.weekday()]}, {MONTH_ABBR[period.month - 1]} {period.day}, {period.year}"
        date_label = when
    else:
        label = MONTH_ABBR[period.month - 1]
        sublabel = str(period.year) if period.month == 1 or first else ""
        when = f"{MONTH_ABBR[period.month - 1]} {period.year}"
        date_label = f"{MONTH_NAMES[period.month - 1]} {period.year}"
    short = format_chart_money(total)
    edge = " bar--start" if position < 3 else " bar--end" if position >= count - 3 else ""
    css = f"bar {'bar--used' if total > 0 else 'bar--zero'}{edge}"
    return Column(
        start=period,
        label=label,
        sublabel=sublabel,
        amount=total,
        amount_label=short,
        tooltip=f"{when}: {format_chart_exact(total)}",
        amounts=[amounts.get(group, ZERO) for group in ordered],
        segments=segments,
        css=css,
        date_label=date_label,
    )
