"""Chart geometry of the customer pages: bars, a dollar axis people can read and its ticks,
and the overview's two charts (twelve months, thirty days) from spending per day. Plain
values the templates draw; the amounts' labels are formatting's |chart_money."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from billing.money import ZERO, quantize_money
from dashboard.formatting import CENT, DAY_ABBR, MONTH_ABBR, format_day

DAILY_DAYS = 30
MONTHLY_MONTHS = 12


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
    # Named on a phone, where 30 days share the width: today and each week back from it.
    is_marked: bool = False

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
        return format_day(self.start)


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


def month_starts(today: date, months: int = MONTHLY_MONTHS) -> list[date]:
    """The first days of the `months` months ending with today's month, oldest first."""
    index = today.year * 12 + today.month - 1
    return [date(i // 12, i % 12 + 1, 1) for i in range(index - months + 1, index + 1)]


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


def monthly_chart(months: list[date], per_day: dict[date, Decimal]) -> Chart:
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


def daily_chart(today: date, per_day: dict[date, Decimal]) -> Chart:
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
            is_marked=(today - day).days % 7 == 0,
        )
        for day in days
    ]
    return Chart(bars=bars, total=sum(amounts.values(), ZERO), scale=scale, ticks=[])
