"""Dependencies that accept connections and never answer (issue 18, finding 2): every
network call has a timeout, nothing waits on one while holding a lock or a transaction,
and what could not be handed over is picked up by the owed-work sweep.

The "hanging" server is a socket on loopback that accepts and never says a word
(tests.services.HangingServer); each test is bounded in time.
"""

import time
from datetime import timedelta

import psycopg
import pytest
import time_machine
from celery.signals import before_task_publish
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from billing.alerts.emails import balance_alert_send
from billing.models import BalanceAlert, LicenseBalance
from billing.tasks import send_owed_balance_alerts
from portal.celery import app as celery_app
from portal.tasks import ping, task_enqueue
from tests.ledger import buy, record_usage
from tests.processes import NOW, profile_for
from tests.services import HangingServer, redis_at

pytestmark = pytest.mark.django_db


def test_enqueue_to_a_hanging_broker_gives_up_in_seconds(settings):
    with HangingServer() as hanging, redis_at(hanging.url("redis", "/0"), settings):
        started = time.monotonic()
        assert task_enqueue(ping, what="ping") is False
        took = time.monotonic() - started
    assert hanging.accepted >= 1  # it really connected, and then got nothing
    assert took < 4 * settings.BROKER_TIMEOUT_SECONDS + 2


def _sync_lock_free(license_id: int) -> bool:
    """Ask from another connection (another session) whether the license's sync lock is free."""
    params = connection.get_connection_params()
    with psycopg.connect(
        host=params.get("host"), port=params.get("port"), user=params.get("user"),
        dbname=params["dbname"], autocommit=True,
    ) as other:  # fmt: skip
        row = other.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [f"usage_sync:{license_id}"]
        ).fetchone()
        assert row is not None  # a SELECT without FROM answers one row
        taken = row[0]
        if taken:
            other.execute(
                "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [f"usage_sync:{license_id}"]
            )
        return bool(taken)


def test_refresh_with_a_hanging_broker_answers_and_hands_alerts_over_outside_the_sync_lock(
    start_simulator, license_a, client_a, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # The first usage takes the balance below the threshold: an alert is owed by a page
    # recorded under the sync's lock, and handed to the (hanging) broker after the commit.
    # The alert settings predate that usage (older usage is a backfill, which announces
    # nothing: billing.alerts).
    LicenseBalance.objects.create(license=license_a, alerts_since=NOW - timedelta(days=3))
    start_simulator(profiles=[profile_for(license_a, days=1)])
    lock_free_when_publishing: list[bool] = []

    def publishing(sender=None, **kwargs):
        # What the page owes the broker: the money events' nudge, then the alert's email.
        if sender in ("billing.money_events_consume", "billing.send_balance_alert"):
            lock_free_when_publishing.append(_sync_lock_free(license_a.pk))

    before_task_publish.connect(publishing)
    try:
        with (
            HangingServer() as hanging,
            redis_at(hanging.url("redis", "/0"), settings),
            django_capture_on_commit_callbacks(execute=True),
        ):
            started = time.monotonic()
            response = client_a.post(
                reverse("dashboard:refresh", kwargs={"license_id": license_a.public_id}),
                follow=True,
            )
            took = time.monotonic() - started
    finally:
        before_task_publish.disconnect(publishing)
    assert response.status_code == 200
    assert took < settings.USAGE_REFRESH_BUDGET_SECONDS + 4 * settings.BROKER_TIMEOUT_SECONDS + 5
    # The hand-overs (the nudge, the alert) were attempted, only once the sync's lock was
    # released.
    assert lock_free_when_publishing == [True, True]
    assert _sync_lock_free(license_a.pk)
    [alert] = BalanceAlert.objects.for_license(license_a)
    assert alert.sent_at is None and alert.attempts == 0  # owed, not lost

    # The broker answers again: the sweep hands the owed alert over and it is sent once.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        assert send_owed_balance_alerts.apply().get() == 1
    alert.refresh_from_db()
    assert alert.sent_at is not None and len(mail.outbox) == 1


def test_a_hanging_mail_server_times_out_and_the_alert_stays_owed_unlocked(license_a, settings):
    buy(license_a, "1.50", "pay_1")
    # $1.10 of usage now: below the $1.00 threshold, a live crossing (not a backfill).
    record_usage(license_a, "r1", at=timezone.now(), images=11_000)
    alert = BalanceAlert.objects.for_license(license_a).get()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_TIMEOUT = 1
    with HangingServer() as hanging:
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", hanging.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        started = time.monotonic()
        with pytest.raises((TimeoutError, OSError)):
            balance_alert_send(alert_id=alert.pk)
        took = time.monotonic() - started
    assert took < 5
    alert.refresh_from_db()
    assert alert.sent_at is None and alert.attempts == 1
    assert "timed out" in alert.last_error.lower() or "Timeout" in alert.last_error
    # Nothing stays claimed: the next delivery (mail server back) sends it.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert balance_alert_send(alert_id=alert.pk) is True
    assert len(mail.outbox) == 1


def test_email_and_broker_timeouts_are_set_by_default(settings):
    assert settings.EMAIL_TIMEOUT == 10
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 2.0
    assert settings.CELERY_REDIS_SOCKET_TIMEOUT == 2.0


def test_pages_and_health_answer_promptly_with_redis_hanging(client_a, license_a, settings):
    with HangingServer() as hanging, redis_at(hanging.url("redis", "/0"), settings):
        started = time.monotonic()
        assert client_a.get(f"/l/{license_a.public_id}/").status_code == 200
        health = client_a.get("/healthz")
        took = time.monotonic() - started
    assert health.status_code == 503 and health.json()["down"] == ["redis"]
    assert took < 6  # metrics give up after 0.2 s and pause; the probe after 2 s
