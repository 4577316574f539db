from datetime import timedelta

import pytest
from django.utils import timezone

from portal.metrics import request_counter
from usage.models import SyncState

pytestmark = pytest.mark.django_db


def count_of(body: str) -> int:
    line = next(
        ln
        for ln in body.splitlines()
        if ln.startswith("portal_http_request_duration_seconds_count")
    )
    return int(line.split()[-1])


def test_metrics_need_the_token_or_a_staff_session(client, client_a, settings):
    settings.METRICS_TOKEN = "t0ken-for-scraper"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client_a.get("/metrics").status_code == 401  # a customer is not staff
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken-for-scraper")
    assert ok.status_code == 200
    assert ok["Content-Type"].startswith("text/plain; version=0.0.4")


def test_sync_lag_charged_quarantined_and_failures_per_license(
    client, license_a, license_b, settings
):
    settings.METRICS_TOKEN = "tok"
    now = timezone.now()
    SyncState.objects.create(
        license=license_a, last_success_at=now - timedelta(minutes=7), records_charged=120,
        records_quarantined=3,
    )  # fmt: skip
    SyncState.objects.create(
        license=license_b, last_success_at=now - timedelta(hours=1), last_error_at=now,
        last_error="upstream not answering", consecutive_failures=1,
    )  # fmt: skip
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer tok").content.decode()
    lag_a = next(
        ln
        for ln in body.splitlines()
        if ln.startswith('portal_sync_lag_seconds{license="ALPHA-000001"}')
    )
    assert 415 <= int(lag_a.split()[-1]) <= 430
    assert 'portal_sync_records_charged_total{license="ALPHA-000001"} 120' in body
    assert 'portal_sync_records_quarantined_total{license="ALPHA-000001"} 3' in body
    assert 'portal_sync_failing{license="ALPHA-000001"} 0' in body
    assert 'portal_sync_failing{license="BRAVO-000002"} 1' in body


def test_requests_are_counted_in_the_latency_histogram(client, settings):
    settings.METRICS_TOKEN = "tok"
    before = count_of(client.get("/metrics", HTTP_AUTHORIZATION="Bearer tok").content.decode())
    for _ in range(3):
        client.get("/accounts/login/")
    after = count_of(client.get("/metrics", HTTP_AUTHORIZATION="Bearer tok").content.decode())
    assert after - before == 3


def test_pages_keep_working_when_redis_is_down(client, settings, monkeypatch):
    monkeypatch.setattr(request_counter, "_client", None)
    monkeypatch.setattr(request_counter, "_paused_until", 0.0)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert client.get("/accounts/login/").status_code == 200
    assert request_counter._paused_until > 0  # counting paused instead of retrying per request
    assert client.get("/accounts/login/").status_code == 200


@pytest.mark.django_db
def test_a_staff_session_reads_metrics_only_with_its_second_factor(client):
    from tests.accounts.factories import UserFactory
    from tests.conftest import staff_force_login

    user = UserFactory(email="ops@portal.example", is_staff=True)
    client.force_login(user)  # password only
    assert client.get("/metrics").status_code == 401
    staff_force_login(client, user)
    assert client.get("/metrics").status_code == 200
