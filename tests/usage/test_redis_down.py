"""Redis (the Celery broker) down: customers and staff keep working. Dashboards, the CSV
history and the admin answer; Refresh Data still syncs within its time budget and says
plainly when the rest cannot be handed to a worker; money recorded meanwhile stays
recorded, and a low-balance alert owed meanwhile goes out once the broker is back.

Redis is "down" here by pointing this process at a port nothing listens on; the fault
suite (test_faults.py) stops a private redis-server under a running worker instead.
"""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from billing.models import BalanceAlert, LicenseBalance
from billing.tasks import send_owed_balance_alerts
from portal.celery import app as celery_app
from tests.accounts.factories import UserFactory
from tests.conftest import staff_force_login
from tests.ledger import assert_ledger_matches_upstream, buy
from tests.processes import NOW, profile_for
from tests.services import DEAD_REDIS_URL, redis_at
from usage.services.sync import usage_sync_license
from usage.simulator import Faults
from usage.upstream import upstream_summary

pytestmark = pytest.mark.django_db


def page(client, name, license, **kwargs):
    return client.get(reverse(name, kwargs={"license_id": license.public_id}), **kwargs)


def test_dashboard_csv_reports_and_admin_answer_with_redis_down(
    start_simulator, license_a, client_a, settings
):
    start_simulator(profiles=[profile_for(license_a, days=1)])
    buy(license_a, "50.00", at=NOW - timedelta(days=2))
    usage_sync_license(license=license_a, trigger="test")
    with redis_at(DEAD_REDIS_URL, settings):
        dashboard = page(client_a, "dashboard:overview", license_a)
        assert dashboard.status_code == 200
        assert "$50.000000" in dashboard.content.decode()  # Total Purchased
        csv = page(client_a, "dashboard:history_csv", license_a)
        assert csv.status_code == 200
        assert b"".join(csv.streaming_content).count(b"\r\n") > 2
        for name in ("dashboard:reports", "dashboard:help", "dashboard:test_api"):
            assert page(client_a, name, license_a).status_code == 200

        staff_force_login(
            client_a, UserFactory(email="root@portal.example", is_staff=True, is_superuser=True)
        )
        for path in (
            "/admin/",
            "/admin/accounts/license/",
            f"/admin/accounts/license/{license_a.pk}/change/",
            "/admin/billing/ledgerentry/",
            "/admin/usage/syncstate/",
        ):
            assert client_a.get(path).status_code == 200, path
        health = client_a.get("/healthz")
        assert health.status_code == 503 and health.json()["down"] == ["redis"]


def test_refresh_with_redis_down_saves_what_it_fetched_and_says_the_rest_is_unavailable(
    start_simulator, license_a, client_a, settings
):
    # About 40 pages of 100 ms: the budget takes the first page even on a busy machine,
    # and never the last.
    settings.UPSTREAM_PAGE_SIZE = 20
    settings.USAGE_REFRESH_BUDGET_SECONDS = 1.5
    start_simulator(profiles=[profile_for(license_a, days=2)], faults=Faults(latency_ms=100))
    with redis_at(DEAD_REDIS_URL, settings):
        response = client_a.post(
            reverse("dashboard:refresh", kwargs={"license_id": license_a.public_id}), follow=True
        )
    assert response.status_code == 200
    [shown] = [str(m) for m in response.context["messages"]]
    assert shown.startswith("Data partly refreshed (")
    assert "refreshing the rest is unavailable right now" in shown
    assert shown in response.content.decode()
    # What the request fetched is recorded; a sync once Redis is back brings the rest.
    summary = upstream_summary(license_key=license_a.key)
    assert usage_sync_license(license=license_a, trigger="test").complete
    assert_ledger_matches_upstream(license_a, summary)


def test_an_alert_owed_while_redis_is_down_is_sent_once_it_is_back(
    start_simulator, license_a, client_a, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # No purchase: the first usage takes the balance below the threshold and owes an alert,
    # handed to a worker after the page commits: with Redis down that hand-over fails.
    # The alert settings were set before that usage happened (usage older than them is a
    # backfill, which announces nothing: billing.alerts).
    LicenseBalance.objects.create(license=license_a, alerts_since=NOW - timedelta(days=3))
    start_simulator(profiles=[profile_for(license_a, days=1)])
    with (
        redis_at(DEAD_REDIS_URL, settings),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = client_a.post(
            reverse("dashboard:refresh", kwargs={"license_id": license_a.public_id}), follow=True
        )
    assert callbacks, "the alert's hand-over runs after the commit"
    assert response.status_code == 200
    [shown] = [str(m) for m in response.context["messages"]]
    assert shown.startswith("Data refreshed:")
    [alert] = BalanceAlert.objects.for_license(license_a)
    assert alert.sent_at is None and alert.attempts == 0

    # Redis is back; the sweep (beat, every 10 minutes) hands the alert over again.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        assert send_owed_balance_alerts.apply().get() == 1
    alert.refresh_from_db()
    assert alert.sent_at is not None
    assert len(mail.outbox) == 1
    # Already sent: the sweep does not send it again.
    with time_machine.travel(timezone.now() + timedelta(minutes=30)):
        assert send_owed_balance_alerts.apply().get() == 0
    assert len(mail.outbox) == 1
