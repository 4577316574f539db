"""An upstream that dribbles its answers or floods them is cut off by a wall-clock deadline
and a bounded read (issue 29): httpx's read timeout alone never trips while a byte arrives
every 0.1 s, and it reads an answer whole however large."""

import time

import pytest
from django.urls import reverse

from tests.hostile import Dribbler, Flood
from usage.upstream import UpstreamClient, UpstreamError

pytestmark = pytest.mark.django_db


def test_the_test_api_ping_ends_by_its_deadline_when_the_upstream_dribbles(
    client_a, license_a, settings
):
    settings.UPSTREAM_WEB_TIMEOUT_SECONDS = 0.5
    with Dribbler(interval=0.1, seconds=20) as upstream:
        settings.UPSTREAM_URL = upstream.url("")
        started = time.monotonic()
        response = client_a.post(
            reverse("dashboard:test_api", kwargs={"license_id": license_a.public_id}),
            follow=True,
        )
        took = time.monotonic() - started
    assert response.status_code == 200
    assert "timed out waiting for an answer" in response.content.decode()
    assert took < 3  # the 0.5 s deadline, not the 20 s the dribble lasts


def test_a_sync_page_ends_by_the_request_deadline_when_the_upstream_dribbles(license_a, settings):
    settings.UPSTREAM_REQUEST_DEADLINE_SECONDS = 1.0
    settings.UPSTREAM_MAX_ATTEMPTS = 1
    with Dribbler(interval=0.1, seconds=20) as upstream:
        started = time.monotonic()
        with UpstreamClient(base_url=upstream.url("")) as client, pytest.raises(UpstreamError):
            client.usage_page(license_key=license_a.key, after="", limit=10)
        assert time.monotonic() - started < 3


def test_an_upstream_answer_larger_than_the_limit_is_refused_unread(license_a, settings):
    settings.UPSTREAM_MAX_ANSWER_BYTES = 2**20
    settings.UPSTREAM_MAX_ATTEMPTS = 1
    with Flood(size=300 * 2**20) as upstream:
        with (
            UpstreamClient(base_url=upstream.url("")) as client,
            pytest.raises(UpstreamError, match="larger than 1,048,576 bytes"),
        ):
            client.usage_page(license_key=license_a.key, after="", limit=10)
        assert upstream.sent < 64 * 2**20  # of the 300 MB offered
