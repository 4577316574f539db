"""One tenant cannot occupy the web's threads on a hanging upstream (issue 18, finding 4):
at most one upstream call in flight per license from the web, a short deadline, and a
circuit breaker that answers at once while the upstream is known down. Against a real
hanging server on loopback (it accepts and never answers), bounded in count and time."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from portal.leases import lease_acquire, lease_release
from tests.accounts.factories import MembershipFactory
from tests.processes import profile_for
from tests.services import HangingServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def hanging_upstream(settings):
    settings.UPSTREAM_WEB_TIMEOUT_SECONDS = 0.5
    settings.UPSTREAM_BREAKER_FAILURES = 3
    settings.UPSTREAM_BREAKER_OPEN_SECONDS = 30
    settings.TEST_API_RATE_LIMIT = 100
    with HangingServer() as hanging:
        settings.UPSTREAM_URL = hanging.url("http")
        yield hanging


def ping(client, license):
    started = time.monotonic()
    response = client.post(
        reverse("dashboard:test_api", kwargs={"license_id": license.public_id}), follow=True
    )
    return response, time.monotonic() - started


def shown(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_a_ping_to_a_hanging_upstream_ends_at_its_short_deadline(
    client_a, license_a, hanging_upstream
):
    response, took = ping(client_a, license_a)
    assert response.status_code == 200
    assert "timed out waiting for an answer" in response.content.decode()
    assert took < 3  # 0.5 s deadline, not 15 s nor forever


def test_once_known_down_the_web_answers_at_once_without_asking(
    client_a, license_a, license_b, member_a, hanging_upstream
):
    MembershipFactory(license=license_b, user=member_a)
    for license in (license_a, license_b, license_a):  # 3 failures in a row, any license
        ping(client_a, license)
    asked = hanging_upstream.accepted
    took = []
    for _ in range(10):  # what filled every thread before: now each answers at once
        response, seconds = ping(client_a, license_b)
        took.append(seconds)
        assert "The API is not answering (several requests in a row failed)" in (
            response.content.decode()
        )
    assert hanging_upstream.accepted == asked  # not one more connection
    assert max(took) < 1.0
    # Refresh Data too: answered at once, the license's sync state untouched.
    refresh = client_a.post(
        reverse("dashboard:refresh", kwargs={"license_id": license_a.public_id}), follow=True
    )
    assert shown(refresh)[0].startswith("Upstream is not answering")
    assert hanging_upstream.accepted == asked
    # After the open time, one trial goes through again.
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        ping(client_a, license_a)
    assert hanging_upstream.accepted == asked + 1


def test_the_breaker_closes_when_the_upstream_answers_again(
    client_a, license_a, start_simulator, settings
):
    from portal.breaker import breaker_failure, breaker_wait

    for _ in range(3):
        breaker_failure("upstream", threshold=3, open_seconds=30, error="test")
    assert breaker_wait("upstream") > 0
    start_simulator(profiles=[profile_for(license_a, days=1)])
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        response, _ = ping(client_a, license_a)
    assert "200" in response.content.decode()
    assert breaker_wait("upstream") == 0
    response, _ = ping(client_a, license_a)  # closed: asks again at once
    assert response.context["ping"].ok


def test_one_upstream_call_in_flight_per_license(
    client_a, license_a, license_b, member_a, hanging_upstream
):
    MembershipFactory(license=license_b, user=member_a)
    holder = lease_acquire(key=f"upstream_web:{license_a.pk}", seconds=60)  # a ping in flight
    assert holder is not None
    try:
        response, took = ping(client_a, license_a)
        assert shown(response) == [
            "A test of this license is already running — send another once it has answered."
        ]
        assert took < 1.0 and hanging_upstream.accepted == 0
        refresh = client_a.post(
            reverse("dashboard:refresh", kwargs={"license_id": license_a.public_id}), follow=True
        )
        assert shown(refresh) == ["An update is already running — fresh numbers are on their way."]
        assert hanging_upstream.accepted == 0
        # Another license is not held up by it.
        ping(client_a, license_b)
        assert hanging_upstream.accepted == 1
    finally:
        lease_release(key=f"upstream_web:{license_a.pk}", holder=holder)
    ping(client_a, license_a)
    assert hanging_upstream.accepted == 2


def test_a_lease_is_held_once_and_expires_by_itself(db):
    first = lease_acquire(key="k", seconds=10)
    assert first and lease_acquire(key="k", seconds=10) is None
    with time_machine.travel(timezone.now() + timedelta(seconds=11)):
        taken_over = lease_acquire(key="k", seconds=10)  # the holder died: it expired
    assert taken_over and taken_over != first
    lease_release(key="k", holder=first)  # the old holder cannot free the new one's
    assert lease_acquire(key="k", seconds=10) is None
