import time
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import License
from portal.metrics import _RedisCounter, request_counter
from tests.accounts.factories import LicenseFactory
from usage.metrics import SyncCollector
from usage.models import SyncState

pytestmark = pytest.mark.django_db


def count_of(body: str) -> int:
    line = next(
        ln
        for ln in body.splitlines()
        if ln.startswith("portal_http_request_duration_seconds_count")
    )
    return int(float(line.split()[-1]))


def test_metrics_need_the_token_or_a_staff_session(client, client_a, settings):
    settings.METRICS_TOKEN = "t0ken-for-scraper"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client_a.get("/metrics").status_code == 401  # a customer is not staff
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken-for-scraper")
    assert ok.status_code == 200
    assert ok["Content-Type"].startswith("text/plain; version=0.0.4")


def scrape(client) -> dict[str, list]:
    """The samples on /metrics by family name, parsed by prometheus_client's own parser."""
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer tok").content.decode()
    return {family.name: family.samples for family in text_string_to_metric_families(body)}


def value(families: dict, name: str, **labels) -> float:
    for sample in (s for family in families.values() for s in family):
        if sample.name == name and sample.labels == labels:
            return sample.value
    raise AssertionError(f"no sample {name} {labels}")


def test_sync_figures_are_aggregates_equal_to_what_the_database_holds(
    client, license_a, license_b, settings
):
    settings.METRICS_TOKEN = "tok"
    now = timezone.now()
    SyncState.objects.create(
        license=license_a, last_success_at=now - timedelta(minutes=7), records_charged=120,
        records_duplicate=4, records_quarantined=3,
    )  # fmt: skip
    SyncState.objects.create(
        license=license_b, last_success_at=now - timedelta(hours=2), last_error_at=now,
        last_error="upstream not answering", consecutive_failures=1, records_charged=30,
    )  # fmt: skip
    never = LicenseFactory(key="NEVER-000003")  # active, never synced
    closed = LicenseFactory(key="CLOSED-000004", status=License.Status.CLOSED)
    SyncState.objects.create(
        license=closed, last_success_at=now - timedelta(days=30), records_charged=7
    )

    families = scrape(client)
    samples = [s for family in families.values() for s in family]
    assert not [s for s in samples if "license" in s.labels], "no series per license"

    # Totals: whatever the sync states hold, closed licenses included.
    totals = SyncState.objects.aggregate(
        charged=Sum("records_charged"), duplicate=Sum("records_duplicate"),
        quarantined=Sum("records_quarantined"),
    )  # fmt: skip
    assert value(families, "portal_sync_records_charged_total") == totals["charged"] == 157
    assert value(families, "portal_sync_records_duplicate_total") == totals["duplicate"] == 4
    assert value(families, "portal_sync_records_quarantined_total") == totals["quarantined"] == 3

    # Licenses the beat covers (the active ones): A healthy, B failing, one never synced.
    active = License.objects.filter(status=License.Status.ACTIVE).count()
    assert value(families, "portal_sync_licenses") == active == 3
    assert value(families, "portal_sync_licenses_failing") == 1
    assert value(families, "portal_sync_licenses_never_synced") == 1
    # Lagging (older than the 15-minute staleness window, or never): B and the new one.
    assert value(families, "portal_sync_licenses_lagging") == 2
    assert not SyncState.objects.filter(license=never).exists()

    # The lag histogram counts the two active licenses synced once: A at 7 min, B at 2 h.
    assert value(families, "portal_sync_lag_seconds_bucket", le="300") == 0
    assert value(families, "portal_sync_lag_seconds_bucket", le="600") == 1
    assert value(families, "portal_sync_lag_seconds_bucket", le="3600") == 1
    assert value(families, "portal_sync_lag_seconds_bucket", le="21600") == 2
    assert value(families, "portal_sync_lag_seconds_bucket", le="+Inf") == 2
    assert value(families, "portal_sync_lag_seconds_count") == 2
    assert (
        7 * 60 + 2 * 3600
        <= value(families, "portal_sync_lag_seconds_sum")
        <= 7 * 60 + 2 * 3600 + 30
    )
    assert 2 * 3600 <= value(families, "portal_sync_lag_max_seconds") <= 2 * 3600 + 30


def test_metrics_cost_the_same_at_any_number_of_licenses(
    client, license_a, settings, django_assert_max_num_queries
):
    settings.METRICS_TOKEN = "tok"
    SyncState.objects.create(license=license_a, last_success_at=timezone.now())
    series_before = sum(len(f) for f in scrape(client).values())
    with django_assert_max_num_queries(3):
        list(SyncCollector().collect())

    for n in range(40):
        SyncState.objects.create(
            license=LicenseFactory(), last_success_at=timezone.now(), consecutive_failures=n % 2
        )
    assert sum(len(f) for f in scrape(client).values()) == series_before
    with django_assert_max_num_queries(3):
        list(SyncCollector().collect())


def test_requests_are_counted_in_the_latency_histogram(client, settings):
    settings.METRICS_TOKEN = "tok"
    before = count_of(client.get("/metrics", HTTP_AUTHORIZATION="Bearer tok").content.decode())
    for _ in range(3):
        client.get("/accounts/login/")
    after = count_of(client.get("/metrics", HTTP_AUTHORIZATION="Bearer tok").content.decode())
    assert after - before == 3


def test_a_process_adds_its_counts_to_redis_at_most_once_a_second(client, monkeypatch):
    other = _RedisCounter()  # another web process: what it reads is what Redis holds
    before = int(other.read().get("status:2xx", 0))
    monkeypatch.setattr(request_counter, "_flushed_at", time.monotonic())  # just added
    for _ in range(3):
        assert client.get("/accounts/login/").status_code == 200
    assert int(other.read().get("status:2xx", 0)) == before  # no Redis round trip per page
    monkeypatch.setattr(request_counter, "_flushed_at", time.monotonic() - 1.0)  # a second on
    client.get("/accounts/login/")
    assert int(other.read().get("status:2xx", 0)) == before + 4  # none lost


def test_pages_keep_working_when_redis_is_down(client, settings, monkeypatch):
    monkeypatch.setattr(request_counter, "_client", None)
    monkeypatch.setattr(request_counter, "_paused_until", 0.0)
    monkeypatch.setattr(request_counter, "_flushed_at", 0.0)  # the next request adds to Redis
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert client.get("/accounts/login/").status_code == 200
    assert request_counter._paused_until > 0  # counting paused instead of retrying per request
    assert client.get("/accounts/login/").status_code == 200


@pytest.mark.parametrize(
    "failure",
    [ValueError("I/O operation on closed file"), OSError(9, "Bad file descriptor")],
)
def test_a_broken_redis_socket_does_not_fail_the_page(client, monkeypatch, failure):
    # Under gunicorn's threads redis-py has raised these, not RedisError, after a timeout.
    class BrokenPipeline:
        def __getattr__(self, name):
            def call(*args, **kwargs):
                raise failure

            return call

    class BrokenClient:
        def pipeline(self, **kwargs):
            return BrokenPipeline()

    monkeypatch.setattr(request_counter, "_client", BrokenClient())
    monkeypatch.setattr(request_counter, "_paused_until", 0.0)
    monkeypatch.setattr(request_counter, "_flushed_at", 0.0)  # the next request adds to Redis
    assert client.get("/accounts/login/").status_code == 200
    assert request_counter._paused_until > 0
    assert request_counter._client is None  # a fresh pool once the pause is over


@pytest.mark.django_db
def test_a_staff_session_reads_metrics_only_with_its_second_factor(client):
    from tests.accounts.factories import UserFactory
    from tests.conftest import staff_force_login

    user = UserFactory(email="ops@portal.example", is_staff=True)
    client.force_login(user)  # password only
    assert client.get("/metrics").status_code == 401
    staff_force_login(client, user)
    assert client.get("/metrics").status_code == 200
