"""Reads of the usage app: sync state and which licenses the scheduled sync covers."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import License
from usage.models import SyncState


def sync_state_get(license: License) -> SyncState:
    return SyncState.objects.for_license(license).first() or SyncState(license=license)


def sync_lagging_before(now: datetime | None = None) -> datetime:
    """The one meaning of "lagging": a sync whose last complete run is older than this
    (the dashboard's staleness notice, USAGE_STALE_AFTER_SECONDS) or that never ran."""
    return (now or timezone.now()) - timedelta(seconds=settings.USAGE_STALE_AFTER_SECONDS)


def sync_states_for_metrics() -> QuerySet[SyncState]:
    return SyncState.objects.select_related("license").order_by("license__key")


def sync_backoff(consecutive_failures: int) -> timedelta:
    """How long the scheduled sync leaves a failing license alone after its last attempt:
    nothing after one failure, then 10, 20, 40 minutes, at most an hour. Refresh Data and
    "Sync now" ignore it."""
    if consecutive_failures < 2:
        return timedelta(0)
    return min(timedelta(minutes=5 * 2 ** (consecutive_failures - 1)), timedelta(hours=1))


def license_ids_to_sync(now: datetime | None = None) -> list[int]:
    """The licenses the scheduled sync covers: the active ones not backing off."""
    now = now or timezone.now()
    rows = (
        License.objects.filter(status=License.Status.ACTIVE)
        .order_by("pk")
        .values_list("pk", "sync_state__consecutive_failures", "sync_state__last_attempt_at")
    )
    return [
        pk
        for pk, failures, last_attempt in rows
        if not failures or not last_attempt or now >= last_attempt + sync_backoff(failures)
    ]


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
