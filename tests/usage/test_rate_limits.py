"""Rate limits a customer meets: Test API pings and Refresh Data say plainly when they may
be used again, never a 500 or a hang; and one license's use never limits another's."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from tests.accounts.factories import MembershipFactory
from tests.processes import profile_for

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def api_page_url(license):
    return reverse("dashboard:test_api", kwargs={"license_id": license.public_id})


def ping(client, license):
    """Click "Send a test request": (status, the page's messages, whether a ping ran)."""
    response = client.post(api_page_url(license), follow=True)
    return (
        response.status_code,
        [str(m) for m in response.context["messages"]],
        response.context.get("ping") is not None,
        response.content.decode(),
    )


@pytest.mark.django_db
def test_test_api_pings_are_limited_per_license_with_a_plain_message(
    start_simulator, license_a, license_b, client_a, member_a, settings
):
    settings.TEST_API_RATE_LIMIT = 3
    settings.TEST_API_RATE_WINDOW_SECONDS = 60
    server = start_simulator(profiles=[profile_for(license_a), profile_for(license_b)])
    MembershipFactory(license=license_b, user=member_a)
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(3):
            status, shown, pinged, _html = ping(client_a, license_a)
            assert (status, shown, pinged) == (200, [], True)
        pings_sent = server.simulator.stats.by_path["/v1/ping"]

        clock.shift(20)
        status, shown, pinged, html = ping(client_a, license_a)
        assert status == 200 and not pinged
        assert shown == [
            "Test requests are limited to 3 a minute — you can send another again in 40 seconds."
        ]
        assert shown[0] in html  # back on the Test API page, message shown
        assert server.simulator.stats.by_path["/v1/ping"] == pings_sent  # upstream not asked

        # Another license of the same login has its own allowance.
        status, shown, pinged, _html = ping(client_a, license_b)
        assert (status, shown, pinged) == (200, [], True)
        # Showing the page is not limited, only sending.
        assert client_a.get(api_page_url(license_a)).status_code == 200

        clock.shift(40)
        status, shown, pinged, _html = ping(client_a, license_a)
        assert (status, shown, pinged) == (200, [], True)


@pytest.mark.django_db
def test_a_stranger_hitting_the_limit_gets_a_404_not_a_message(client_a, license_b, settings):
    settings.TEST_API_RATE_LIMIT = 0
    response = client_a.post(api_page_url(license_b))
    assert response.status_code == 404


@pytest.mark.django_db
def test_refresh_too_soon_reads_like_the_rate_limits(start_simulator, license_a, client_a):
    start_simulator(profiles=[profile_for(license_a, days=1)])
    refresh = reverse("dashboard:refresh", kwargs={"license_id": license_a.public_id})
    with time_machine.travel(START, tick=False) as clock:
        client_a.post(refresh, follow=True)  # reads (and clears) the first answer
        clock.shift(25)
        response = client_a.post(refresh, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "Refreshed a moment ago — you can refresh again in 5 seconds."
    ]


def test_waits_are_written_for_people():
    from portal.ratelimit import duration_text, per_window_text

    assert duration_text(1) == "1 second"
    assert duration_text(119) == "119 seconds"
    assert duration_text(121) == "3 minutes"  # rounded up: never promise too early
    assert per_window_text(10, 60) == "10 a minute"
    assert per_window_text(10, 600) == "10 every 10 minutes"
    assert per_window_text(1, 30) == "1 every 30 seconds"
