"""The manual-refresh claim: Refresh Data syncs a license at most once per
USAGE_REFRESH_INTERVAL_SECONDS, decided by one conditional UPDATE."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import License
from usage.models import SyncState


def usage_refresh_claim(*, license: License) -> bool:
    """Claim the manual refresh of a license: True at most once per refresh interval.

    One conditional UPDATE decides, so two clicks at the same instant get one True, and it
    needs only the database (a Redis outage does not open the gate).
    """
    SyncState.objects.get_or_create(license=license)
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.USAGE_REFRESH_INTERVAL_SECONDS)
    claimed = (
        SyncState.objects.for_license(license)
        .filter(Q(last_manual_refresh_at__isnull=True) | Q(last_manual_refresh_at__lte=cutoff))
        .update(last_manual_refresh_at=now)
    )
    return claimed == 1
