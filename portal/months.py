"""Calendar months as the portal counts them: a month is the date of its first day."""

from datetime import date


def month_of(day: date) -> date:
    """The month a day is in (its first day)."""
    return day.replace(day=1)


def next_month(month: date) -> date:
    """The month after `month` (any day of it)."""
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    """The month before `month` (any day of it)."""
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)
