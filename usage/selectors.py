"""Reads of the usage app: sync state and which licenses the scheduled sync covers."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Min,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.expressions import Combinable
from django.utils import timezone

from accounts.models import License
from usage.models import FAILING, SyncFeed, SyncState, SyncStateQuerySet, current_as_of

FEED = "upstream"


def sync_state_get(license: License) -> SyncState:
    """The license's sync state, with the feed's confirmation (one query), so that
    `known_current_at` says when its usage was last known complete."""
    confirmed = SyncFeed.objects.filter(name=FEED).values("confirmed_at")[:1]
    return (
        SyncState.objects.for_license(license)
        .annotate(feed_confirmed_at=Subquery(confirmed))
        .first()
    ) or SyncState(license=license)


def known_current_at_subquery(license_ref: Combinable) -> Subquery:
    """SyncState.known_current_at of the license `license_ref` names (an OuterRef), as a
    subquery, so a reader folds it into a query of its own (the dashboard's basis); NULL
    when the license never synced or has no sync state yet."""
    confirmed = SyncFeed.objects.filter(name=FEED).values("confirmed_at")[:1]
    return Subquery(
        SyncState.objects.filter(license=license_ref)
        .annotate(as_of=current_as_of(Subquery(confirmed)))
        .values("as_of")[:1]
    )


def sync_lagging_before(now: datetime | None = None) -> datetime:
    """The one meaning of "lagging": a sync whose last complete run is older than this
    (the dashboard's staleness notice, USAGE_STALE_AFTER_SECONDS) or that never ran."""
    return (now or timezone.now()) - timedelta(seconds=settings.USAGE_STALE_AFTER_SECONDS)


def sync_feed_get() -> SyncFeed:
    """Where the beat stands in the upstream's feed (an unsaved row before its first read)."""
    return SyncFeed.objects.filter(name=FEED).first() or SyncFeed(name=FEED)


def sync_states_lagging(now: datetime | None = None) -> SyncStateQuerySet:
    """Sync states whose usage is older than the staleness window (or never synced)."""
    return SyncState.objects.lagging(sync_lagging_before(now), sync_feed_get().confirmed_at)


# Upper bounds (seconds) of the lag histogram on /metrics: a beat, the staleness window,
# an hour, the safety sweep's day.
SYNC_LAG_BUCKETS = (60, 300, 600, 900, 1800, 3600, 6 * 3600, 86400)


@dataclass(frozen=True)
class SyncFigures:
    """The sync across all licenses, for /metrics: counts and sums, never per license."""

    licenses: int
    failing: int
    owed: int
    lagging: int
    never_synced: int
    lag_buckets: tuple[int, ...]  # cumulative, one per SYNC_LAG_BUCKETS
    lag_sum_seconds: float
    lag_max_seconds: float
    records_charged: int
    records_duplicate: int
    records_quarantined: int
    feed_failing: bool
    feed_confirmed_age_seconds: float | None


def sync_figures(now: datetime | None = None) -> SyncFigures:
    """Three queries whatever the number of licenses: the feed row, the active licenses'
    count, and one aggregate over the sync states. Lags and failures count the active
    licenses (the ones the beat syncs); record totals count every license ever synced."""
    now = now or timezone.now()
    feed = sync_feed_get()
    licenses = License.objects.filter(status=License.Status.ACTIVE).count()
    active = Q(license__status=License.Status.ACTIVE)
    known = Q(as_of__isnull=False)
    buckets = {
        f"le_{b}": Count("pk", filter=active & Q(as_of__gte=now - timedelta(seconds=b)))
        for b in SYNC_LAG_BUCKETS
    }
    row = SyncState.objects.annotate(as_of=current_as_of(feed.confirmed_at)).aggregate(
        synced=Count("pk", filter=active & known),
        failing=Count("pk", filter=active & FAILING),
        owed=Count("pk", filter=active & Q(owed_since__isnull=False)),
        lagging=Count("pk", filter=active & Q(as_of__lt=sync_lagging_before(now))),
        oldest=Min("as_of", filter=active),
        lag_sum=Sum(
            ExpressionWrapper(Value(now) - F("as_of"), output_field=DurationField()),
            filter=active & known,
        ),
        charged=Sum("records_charged"),
        duplicate=Sum("records_duplicate"),
        quarantined=Sum("records_quarantined"),
        **buckets,
    )
    never_synced = licenses - row["synced"]
    return SyncFigures(
        licenses=licenses,
        failing=row["failing"],
        owed=row["owed"],
        lagging=row["lagging"] + never_synced,
        never_synced=never_synced,
        lag_buckets=tuple(row[f"le_{b}"] for b in SYNC_LAG_BUCKETS),
        lag_sum_seconds=row["lag_sum"].total_seconds() if row["lag_sum"] else 0.0,
        lag_max_seconds=(now - row["oldest"]).total_seconds() if row["oldest"] else 0.0,
        records_charged=row["charged"] or 0,
        records_duplicate=row["duplicate"] or 0,
        records_quarantined=row["quarantined"] or 0,
        feed_failing=bool(feed.last_error),
        feed_confirmed_age_seconds=(
            (now - feed.confirmed_at).total_seconds() if feed.confirmed_at else None
        ),
    )


def sync_backoff(consecutive_failures: int) -> timedelta:
    """How long the scheduled sync leaves a failing license alone after its last attempt:
    nothing after one failure, then 10, 20, 40 minutes, at most an hour. Refresh Data and
    "Sync now" ignore it."""
    if consecutive_failures < 2:
        return timedelta(0)
    return min(timedelta(minutes=5 * 2 ** (consecutive_failures - 1)), timedelta(hours=1))


def _not_backing_off(licenses: QuerySet[License], now: datetime) -> list[int]:
    rows = licenses.order_by("pk").values_list(
        "pk", "sync_state__consecutive_failures", "sync_state__last_attempt_at"
    )
    return [
        pk
        for pk, failures, last_attempt in rows
        if not failures or not last_attempt or now >= last_attempt + sync_backoff(failures)
    ]


def license_ids_to_sync(now: datetime | None = None) -> list[int]:
    """Every active license not backing off: the full poll (the beat's fallback while the
    upstream's feed fails, and `manage.py sync_usage --all`)."""
    return _not_backing_off(
        License.objects.filter(status=License.Status.ACTIVE), now or timezone.now()
    )


def license_ids_owed_sync(now: datetime | None = None) -> list[int]:
    """The active licenses the beat syncs while the feed works, not backing off: the ones
    the feed named since their last complete run, the failing ones, and the ones never
    synced. An idle license is none of these and costs nothing."""
    owed = (
        Q(sync_state__isnull=True)
        | Q(sync_state__owed_since__isnull=False)
        | Q(sync_state__last_success_at__isnull=True)
        | Q(sync_state__consecutive_failures__gt=0)
    )
    return _not_backing_off(
        License.objects.filter(owed, status=License.Status.ACTIVE), now or timezone.now()
    )


def sweep_chunk_size(active_licenses: int) -> int:
    """How many licenses the safety sweep takes per beat so that every active license is
    synced once per USAGE_SWEEP_SECONDS (0: the sweep is off)."""
    if settings.USAGE_SWEEP_SECONDS <= 0 or not active_licenses:
        return 0
    beats = max(1, settings.USAGE_SWEEP_SECONDS // settings.USAGE_BEAT_SECONDS)
    return math.ceil(active_licenses / beats)


@dataclass(frozen=True)
class SweepChunk:
    license_ids: list[int]  # to sync now (the chunk less the licenses backing off)
    next_after_id: int  # where the next chunk starts


def license_ids_sweep(*, after_id: int, now: datetime | None = None) -> SweepChunk:
    """The safety sweep's next chunk: active licenses after `after_id` in id order,
    starting over from the first when the list ends."""
    active = License.objects.filter(status=License.Status.ACTIVE)
    size = sweep_chunk_size(active.count())
    if not size:
        return SweepChunk([], after_id)
    ids = list(active.filter(pk__gt=after_id).order_by("pk").values_list("pk", flat=True)[:size])
    if len(ids) < size:  # the end of the list: on from the start
        ids += (
            active.filter(pk__lte=after_id)
            .order_by("pk")
            .values_list("pk", flat=True)[: size - len(ids)]
        )
    return SweepChunk(
        _not_backing_off(active.filter(pk__in=ids), now or timezone.now()),
        ids[-1] if ids else after_id,
    )


def license_for_sync(license_id: int) -> License | None:
    """The license a sync task names, unless it is gone or closed."""
    return License.objects.exclude(status=License.Status.CLOSED).filter(pk=license_id).first()


def refresh_wait_seconds(license: License) -> int:
    """Seconds until the license may be refreshed by hand again (0: now)."""
    last = sync_state_get(license).last_manual_refresh_at
    if last is None:
        return 0
    elapsed = (timezone.now() - last).total_seconds()
    return max(0, int(settings.USAGE_REFRESH_INTERVAL_SECONDS - elapsed + 0.999))
