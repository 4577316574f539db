"""The beat asks the upstream's feed which licenses have new usage and syncs only those:
an idle license costs no request and no write, an active one is synced every cycle, and
neither a feed outage nor lost sync tasks lose anything."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.ledger import assert_ledger_matches_upstream, ledger_usage
from tests.processes import NOW, profile_for
from usage.models import SyncFeed, SyncState
from usage.selectors import FEED, sync_feed_get, sync_state_get, sync_states_lagging
from usage.services.feed import usage_feed_read
from usage.services.sync import usage_sync_license
from usage.simulator import Faults
from usage.tasks import usage_sync_all_licenses
from usage.upstream import UpstreamClient, UpstreamError, upstream_summary

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("celery_eager")]


@pytest.fixture
def upstream(start_simulator, license_a, license_b, settings):
    """License A keeps using the service; license B stopped a day before the tests' NOW."""
    settings.USAGE_SWEEP_SECONDS = 0  # the safety sweep has its own test
    return start_simulator(
        profiles=[
            profile_for(license_a, days=1, calls_per_day=2000),
            profile_for(license_b, days=3, stop_at=NOW - timedelta(days=1)),
        ]
    )


def beat(upstream, *, minutes_later: int = 0) -> int:
    """One beat cycle, the upstream's clock moved on first (new usage arrives for A)."""
    upstream.simulator.now = NOW + timedelta(minutes=minutes_later)
    return usage_sync_all_licenses.apply().get()


def attempted_at(license):
    return SyncState.objects.get(license=license).last_attempt_at


def test_the_feed_names_the_licenses_with_new_usage_since_its_cursor(upstream, license_a):
    with UpstreamClient() as client:
        first = client.usage_changes(after="", limit=1)
        rest = client.usage_changes(after=first.next_cursor, limit=10)
        assert first.has_more and not rest.has_more
        # From the beginning: every license with usage, oldest change first, paged.
        assert first.license_keys + rest.license_keys == ["BRAVO-000002", "ALPHA-000001"]
        assert client.usage_changes(after=rest.next_cursor, limit=10).license_keys == []

        upstream.simulator.now = NOW + timedelta(minutes=30)
        later = client.usage_changes(after=rest.next_cursor, limit=10)
        assert later.license_keys == [license_a.key] and not later.has_more
        assert later.next_cursor != rest.next_cursor


def test_an_idle_license_is_not_synced_on_a_cycle_and_an_active_one_is(
    upstream, license_a, license_b
):
    assert beat(upstream) == 2  # never synced: both
    assert_ledger_matches_upstream(license_b, upstream_summary(license_key=license_b.key))
    b_attempt, b_usage = attempted_at(license_b), ledger_usage(license_b)
    a_records = ledger_usage(license_a)["records"]

    before_second = timezone.now()
    assert beat(upstream, minutes_later=10) == 1
    assert attempted_at(license_b) == b_attempt  # not asked, not written
    assert ledger_usage(license_b) == b_usage
    assert ledger_usage(license_a)["records"] > a_records
    assert_ledger_matches_upstream(license_a, upstream_summary(license_key=license_a.key))
    assert SyncState.objects.filter(owed_since__isnull=False).count() == 0

    # B's usage is known complete as of the feed's read, not as of its last sync: its
    # dashboard is not stale and the staff's "lagging" list does not name it.
    state_b = sync_state_get(license_b)
    assert state_b.known_current_at is not None and state_b.known_current_at >= before_second
    assert state_b.last_success_at is not None and state_b.last_success_at < before_second
    assert not sync_states_lagging(timezone.now() + timedelta(minutes=14)).exists()


def test_a_feed_outage_polls_every_license_and_the_cursor_stays(upstream, license_a, license_b):
    beat(upstream)
    cursor = sync_feed_get().cursor
    b_attempt = attempted_at(license_b)

    upstream.simulator.faults = Faults(feed_error_share=1.0)
    assert beat(upstream, minutes_later=10) == 2  # every active license, as before the feed
    feed = sync_feed_get()
    assert feed.cursor == cursor and feed.last_error
    assert attempted_at(license_b) > b_attempt
    assert_ledger_matches_upstream(license_a, upstream_summary(license_key=license_a.key))

    upstream.simulator.faults = Faults()
    assert beat(upstream, minutes_later=20) == 1  # back on the feed: A only
    assert sync_feed_get().last_error == ""
    assert_ledger_matches_upstream(license_a, upstream_summary(license_key=license_a.key))


def test_syncs_lost_after_the_feed_moved_on_are_enqueued_again(upstream, license_a, license_b):
    beat(upstream)
    upstream.simulator.now = NOW + timedelta(minutes=10)
    # The feed is read and its cursor moves past A's new usage, but the syncs never run
    # (the beat died before enqueuing, the broker refused, or the tasks expired).
    read = usage_feed_read()
    assert read.complete and read.licenses_named == 1
    assert SyncState.objects.get(license=license_a).owed_since is not None
    assert (
        upstream_summary(license_key=license_a.key)["records"] > ledger_usage(license_a)["records"]
    )

    # The next beat: the feed has nothing new, yet A is still owed its sync.
    assert beat(upstream, minutes_later=10) == 1
    assert_ledger_matches_upstream(license_a, upstream_summary(license_key=license_a.key))
    assert SyncState.objects.get(license=license_a).owed_since is None


def test_a_mark_newer_than_the_run_survives_it(upstream, license_a):
    SyncState.objects.create(license=license_a, owed_since=timezone.now() + timedelta(minutes=1))
    assert usage_sync_license(license=license_a).complete
    assert SyncState.objects.get(license=license_a).owed_since is not None  # still owed

    SyncState.objects.filter(license=license_a).update(owed_since=timezone.now())
    assert usage_sync_license(license=license_a).complete
    assert SyncState.objects.get(license=license_a).owed_since is None


def test_the_safety_sweep_syncs_every_license_in_chunks(upstream, license_a, license_b, settings):
    beat(upstream)
    settings.USAGE_SWEEP_SECONDS = 2 * settings.USAGE_BEAT_SECONDS  # two beats: 1 license each
    b_attempt = attempted_at(license_b)
    beat(upstream)  # nothing new upstream; the sweep takes A (first by id)
    assert attempted_at(license_b) == b_attempt
    assert SyncFeed.objects.get(name=FEED).sweep_after_id == license_a.pk
    beat(upstream)  # then B
    assert attempted_at(license_b) > b_attempt
    assert SyncFeed.objects.get(name=FEED).sweep_after_id == license_b.pk


def test_a_bad_feed_cursor_or_limit_is_refused_with_a_reason(upstream):
    with UpstreamClient() as client, pytest.raises(UpstreamError, match="bad cursor"):
        client.usage_changes(after="c1.123.x", limit=10)  # a usage cursor, not the feed's
    with UpstreamClient() as client, pytest.raises(UpstreamError, match="limit must be"):
        client.usage_changes(after="", limit=0)
