"""Usage by period: a license's usage charges per day or month, by service or endpoint,
from the daily rollups (the usage explorer and the API's usage)."""

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from django.db.models import DateField, F, Sum
from django.db.models.functions import TruncMonth

from accounts.models import License
from billing.ledger.selectors import balance_get
from billing.ledger.usage import calls_per_service
from billing.models import DailyRollup, EndpointDailyRollup, LedgerEntry
from billing.money import ZERO, quantize_money
from portal.exceptions import ApplicationError

# Usage ranges: day buckets over at most a year, month buckets over at most three (a
# bounded number of rollup rows whatever the history). The API and the usage explorer both
# read through usage_by_period, so both refuse the same ranges with the same words.
USAGE_GRANULARITIES = ("day", "month")


USAGE_GROUPINGS = ("service", "endpoint")


USAGE_MAX_DAYS = {"day": 366, "month": 3 * 366}


# The local days a customer may ask for (every filter and range: later days would
# overflow a datetime once a day is added to make the range's end).
LOCAL_DATE_MIN = date(1970, 1, 1)


LOCAL_DATE_MAX = date(9998, 12, 31)


class UsageRangeError(ApplicationError):
    """A usage range that cannot be read: `field` names the parameter ("from", "to",
    "granularity", "group_by"), `code` is the API's error code."""

    def __init__(self, message: str, *, field: str, code: str = "invalid_request"):
        super().__init__(message, field=field)
        self.code = code


class UsageNotReady(ApplicationError):
    """Usage by endpoint of a license whose endpoint rollups do not cover its history yet."""


ENDPOINT_NOT_READY_MESSAGE = (
    "Usage by endpoint is still being prepared for this license's history; "
    "usage by service is complete. Please try again later."
)


def usage_range_check(*, start: date, end: date, granularity: str, group_by: str) -> None:
    """UsageRangeError naming the field, for a range usage_by_period does not read."""
    if granularity not in USAGE_GRANULARITIES:
        raise UsageRangeError("'granularity' must be day or month.", field="granularity")
    if group_by not in USAGE_GROUPINGS:
        raise UsageRangeError("'group_by' must be service or endpoint.", field="group_by")
    for name, value in (("to", end), ("from", start)):
        if not LOCAL_DATE_MIN <= value <= LOCAL_DATE_MAX:
            raise UsageRangeError(
                f"'{name}' must lie between {LOCAL_DATE_MIN} and {LOCAL_DATE_MAX}.", field=name
            )
    if start > end:
        raise UsageRangeError("'to' must be on or after 'from'.", field="to")
    days = (end - start).days + 1
    limit = USAGE_MAX_DAYS[granularity]
    if days > limit:
        hint = "a later 'from' or group by month" if granularity == "day" else "a later 'from'"
        raise UsageRangeError(
            f"'from': a range by {granularity} spans at most {limit} days (this one spans "
            f"{days}); choose {hint}.",
            field="from",
            code="range_too_long",
        )


@dataclass(frozen=True)
class UsageBucket:
    """Usage of one service (or endpoint) in one local day or month: spent (positive) and
    counts. `api_calls`: calls, each under one service (billing.ledger.usage.
    calls_per_service: an image call is an ai_images call) or its endpoint; `entries`: the
    transactions (ledger lines) posted, one per service a call used."""

    period: date  # the day, or the first day of the month
    group: str  # the service, or the endpoint ("" when none was recorded)
    amount: Decimal
    tokens: int
    images: int
    api_calls: int
    entries: int = 0


def usage_by_period(
    *, license: License, start: date, end: date, granularity: str, group_by: str = "service"
) -> list[UsageBucket]:
    """Usage per local day or month and per service or endpoint over [start, end] (local
    days, inclusive), ordered by period and group.

    From the rollups (DailyRollup by service, EndpointDailyRollup by endpoint), so the cost
    follows the range asked for, not the history's length. UsageRangeError for a range it
    does not read, UsageNotReady for endpoints before their rollups cover the history.
    """
    usage_range_check(start=start, end=end, granularity=granularity, group_by=group_by)
    if group_by == "endpoint":
        if not balance_get(license).endpoint_rollups_ready:
            raise UsageNotReady(ENDPOINT_NOT_READY_MESSAGE, field="group_by")
        qs = EndpointDailyRollup.objects.for_license(license).filter(day__gte=start, day__lte=end)
    else:
        qs = DailyRollup.objects.for_license(license).filter(
            kind=LedgerEntry.Kind.USAGE, day__gte=start, day__lte=end
        )
    period = TruncMonth("day", output_field=DateField()) if granularity == "month" else F("day")
    rows = (
        qs.annotate(period=period)
        .values("period", group_by)
        .annotate(
            amount=Sum("amount"),
            tokens=Sum("tokens"),
            images=Sum("images"),
            calls=Sum("api_calls"),
            entries=Sum("entries"),
        )
        .order_by("period", group_by)
    )
    buckets = [
        UsageBucket(
            period=row["period"],
            group=row[group_by],
            amount=quantize_money(Decimal(0) - row["amount"]),  # not -0
            tokens=row["tokens"],
            images=row["images"],
            api_calls=row["calls"],
            entries=row["entries"],
        )
        for row in rows
    ]
    return _calls_by_service(buckets) if group_by == "service" else buckets


def _calls_by_service(buckets: list[UsageBucket]) -> list[UsageBucket]:
    """Each period's calls put under their services (calls_per_service), a bucket added
    for ai_data when it has calls but posted nothing itself."""
    by_period: dict[date, dict[str, UsageBucket]] = defaultdict(dict)
    for bucket in buckets:
        by_period[bucket.period][bucket.group] = bucket
    counted = []
    for period, groups in by_period.items():
        calls = calls_per_service({g: (b.api_calls, b.entries) for g, b in groups.items()})
        for service in sorted(calls):
            bucket = groups.get(service) or UsageBucket(period, service, ZERO, 0, 0, 0, 0)
            counted.append(replace(bucket, api_calls=calls[service]))
    return counted
