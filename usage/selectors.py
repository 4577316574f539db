from django.conf import settings
from django.utils import timezone

from accounts.models import License
from usage.models import SyncState


def sync_state_get(license: License) -> SyncState:
    return SyncState.objects.for_license(license).first() or SyncState(license=license)


def license_ids_to_sync() -> list[int]:
    """The licenses the scheduled sync covers: the active ones."""
    return list(
        License.objects.filter(status=License.Status.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
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
