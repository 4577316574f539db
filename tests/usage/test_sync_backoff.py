"""The scheduled sync leaves a failing license alone for a while, then tries again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.processes import profile_for
from usage.models import SyncState
from usage.selectors import license_ids_to_sync, sync_backoff
from usage.services.sync import usage_sync_license

pytestmark = pytest.mark.django_db


def test_backoff_grows_with_failures_and_is_capped():
    assert [sync_backoff(n) for n in (0, 1, 2, 3, 4, 10)] == [
        timedelta(0),
        timedelta(0),
        timedelta(minutes=10),
        timedelta(minutes=20),
        timedelta(minutes=40),
        timedelta(hours=1),
    ]


def test_failing_license_is_skipped_until_its_backoff_passes(license_a, license_b):
    now = timezone.now()
    SyncState.objects.create(license=license_a, consecutive_failures=3, last_attempt_at=now)
    SyncState.objects.create(license=license_b, consecutive_failures=1, last_attempt_at=now)
    assert license_ids_to_sync(now + timedelta(minutes=19)) == [license_b.pk]
    assert license_ids_to_sync(now + timedelta(minutes=20)) == [license_a.pk, license_b.pk]


def test_failures_are_counted_and_a_complete_sync_resets_them(license_a, settings, start_simulator):
    settings.UPSTREAM_URL = "http://127.0.0.1:1"  # nothing listens
    settings.UPSTREAM_MAX_ATTEMPTS = 1
    for _ in range(2):
        assert usage_sync_license(license=license_a).error
    assert SyncState.objects.get(license=license_a).consecutive_failures == 2

    start_simulator(profiles=[profile_for(license_a, days=1, calls_per_day=20)])
    result = usage_sync_license(license=license_a)
    assert result.complete and not result.error
    assert SyncState.objects.get(license=license_a).consecutive_failures == 0
