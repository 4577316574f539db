"""When usage stops arriving (upstream down or slow, workers stopped), the dashboard keeps
showing the last data, says how old it is, and says so plainly once it is over 15 minutes."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from dashboard.formatting import format_age
from tests.ledger import buy
from tests.matching import search
from usage.models import SyncState

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def dashboard(client, license) -> str:
    response = client.get(reverse("dashboard:overview", kwargs={"license_id": license.public_id}))
    assert response.status_code == 200
    return response.content.decode()


def last_updated(html: str) -> str:
    return search(r'data-testid="last-updated"[^>]*>([^<]*)<', html)[1]


def synced(license, ago: timedelta):
    SyncState.objects.update_or_create(license=license, defaults={"last_success_at": NOW - ago})


def test_fresh_data_shows_its_age_and_no_notice(client_a, license_a):
    buy(license_a, "25.00", at=NOW - timedelta(days=1))
    synced(license_a, timedelta(minutes=4))
    with time_machine.travel(NOW, tick=False):
        html = dashboard(client_a, license_a)
    assert last_updated(html) == "4 minutes ago"
    assert 'data-testid="stale-notice"' not in html


def test_data_older_than_15_minutes_is_shown_with_its_age_and_a_notice(client_a, license_a):
    buy(license_a, "25.00", at=NOW - timedelta(days=1))
    synced(license_a, timedelta(minutes=40))
    with time_machine.travel(NOW, tick=False):
        html = dashboard(client_a, license_a)
    assert last_updated(html) == "40 minutes ago"
    assert "Usage data may be out of date." in html
    assert "The last update was 40 minutes ago" in html
    # The last data is still there: the balance, the exact time of the last update.
    assert "$25.000000" in html
    assert "Nov 20, 2026, 11:20 UTC" in html
    # The notice sits in a section the 5-minute auto-refresh swaps, so it appears and
    # clears without a reload.
    section = search(r'<div id="freshness-section" data-refresh-section>(.*?)</div>', html, re.S)
    assert "Usage data may be out of date." in section[1]


def test_the_notice_clears_when_a_sync_succeeds_again(client_a, license_a):
    synced(license_a, timedelta(hours=3))
    with time_machine.travel(NOW, tick=False):
        assert "Usage data may be out of date." in dashboard(client_a, license_a)
        synced(license_a, timedelta(0))
        html = dashboard(client_a, license_a)
    assert "Usage data may be out of date." not in html
    assert last_updated(html) == "just now"


def test_the_threshold_is_a_setting(client_a, license_a, settings):
    settings.USAGE_STALE_AFTER_SECONDS = 60 * 60
    synced(license_a, timedelta(minutes=40))
    with time_machine.travel(NOW, tick=False):
        assert "Usage data may be out of date." not in dashboard(client_a, license_a)


def test_never_synced_says_so_without_a_notice(client_a, license_a):
    html = dashboard(client_a, license_a)
    assert last_updated(html) == "Not synced yet"
    assert "Usage data may be out of date." not in html


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(0, "just now"), (59, "just now"), (60, "1 minute ago"), (40 * 60, "40 minutes ago"),
     (3599, "59 minutes ago"), (3600, "1 hour ago"), (3 * 86400 + 5, "3 days ago")],
)  # fmt: skip
def test_ages_read_naturally(seconds, label):
    assert format_age(seconds) == label
