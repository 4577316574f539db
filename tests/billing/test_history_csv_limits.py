"""History downloads are limited per license, with a message saying when to try again."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse

from tests.accounts.factories import MembershipFactory
from tests.ledger import buy

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def csv_url(license):
    return reverse("dashboard:history_csv", kwargs={"license_id": license.public_id})


def test_downloads_over_the_limit_go_back_to_the_dashboard_saying_when(
    client_a, license_a, license_b, member_a, settings
):
    settings.HISTORY_CSV_RATE_LIMIT = 2
    settings.HISTORY_CSV_RATE_WINDOW_SECONDS = 600
    buy(license_a, "10.00", "pay_a")
    buy(license_b, "10.00", "pay_b")
    MembershipFactory(license=license_b, user=member_a)
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(2):
            response = client_a.get(csv_url(license_a))
            assert response.status_code == 200
            assert b"".join(response.streaming_content).startswith(b"date_time,")

        clock.shift(60)
        refused = client_a.get(csv_url(license_a))
        assert refused.status_code == 302
        assert refused["Location"] == reverse(
            "dashboard:overview", kwargs={"license_id": license_a.public_id}
        )
        assert [str(m) for m in get_messages(refused.wsgi_request)] == [
            "History downloads are limited to 2 every 10 minutes — "
            "you can download it again in 9 minutes."
        ]
        # The other license's downloads are counted apart.
        assert client_a.get(csv_url(license_b)).status_code == 200

        clock.shift(540)
        assert client_a.get(csv_url(license_a)).status_code == 200


def test_the_default_limits_come_from_settings(settings):
    assert settings.HISTORY_CSV_RATE_LIMIT == 10
    assert settings.HISTORY_CSV_RATE_WINDOW_SECONDS == 600
    assert settings.TEST_API_RATE_LIMIT == 10
    assert settings.TEST_API_RATE_WINDOW_SECONDS == 60
