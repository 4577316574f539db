"""Refresh Data and the Test API page, end to end: log in, click, read the page and the ledger."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings as django_settings
from django.urls import reverse

from billing.ledger.selectors import balance_get
from portal.celery import app as celery_app
from portal.leases import lease_acquire, lease_release
from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory
from tests.ledger import assert_ledger_matches_upstream
from tests.processes import NOW, profile_for
from usage.services.refresh import usage_refresh_claim
from usage.services.sync import usage_sync_license
from usage.simulator import Faults
from usage.tasks import usage_sync_license_task
from usage.upstream import upstream_summary


def refresh_url(license):
    return reverse("dashboard:refresh", kwargs={"license_id": license.public_id})


def api_page_url(license):
    return reverse("dashboard:test_api", kwargs={"license_id": license.public_id})


def refresh(client, license):
    """Click Refresh Data; the messages the dashboard then shows."""
    response = client.post(refresh_url(license), follow=True)
    assert response.redirect_chain == [
        (reverse("dashboard:overview", kwargs={"license_id": license.public_id}), 302)
    ]
    shown = [str(m) for m in response.context["messages"]]
    html = response.content.decode()
    assert all(message in html for message in shown)
    return shown


@pytest.fixture
def new_york(db):
    license = LicenseFactory(key="NEWYORK-0001", timezone="America/New_York")
    user = UserFactory(email="nia@newyork.example")
    MembershipFactory(license=license, user=user)
    return license, user


@pytest.fixture
def client_ny(client, new_york):
    client.force_login(new_york[1])
    return client


def test_refresh_data_brings_fresh_numbers_back_to_the_dashboard(
    start_simulator, license_a, client_a
):
    server = start_simulator(
        profiles=[profile_for(license_a, days=1)], now=NOW - timedelta(hours=3)
    )
    usage_sync_license(license=license_a, trigger="test")
    calls_before = balance_get(license_a).api_calls

    server.simulator.now = NOW  # three more hours of usage upstream
    shown = refresh(client_a, license_a)

    summary = upstream_summary(license_key=license_a.key)
    assert_ledger_matches_upstream(license_a, summary)
    new_calls = summary["records"] - calls_before
    assert new_calls > 0
    assert shown == [f"Data refreshed: {new_calls} new API calls."]


def test_refresh_too_soon_says_when_it_may_be_asked_again(start_simulator, license_a, client_a):
    server = start_simulator(profiles=[profile_for(license_a, days=1)])
    with time_machine.travel(datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC), tick=False) as clock:
        refresh(client_a, license_a)
        requests_after_first = server.simulator.stats.by_path["/v1/usage"]
        clock.shift(12)
        assert refresh(client_a, license_a) == [
            "Refreshed a moment ago — you can refresh again in 18 seconds."
        ]
        assert server.simulator.stats.by_path["/v1/usage"] == requests_after_first  # no sync ran
        clock.shift(18)
        assert refresh(client_a, license_a) == [
            "Data refreshed: nothing new since the last update."
        ]


def test_refresh_claim_is_granted_once_per_interval(license_a):
    with time_machine.travel(datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC), tick=False) as clock:
        assert usage_refresh_claim(license=license_a) is True
        assert usage_refresh_claim(license=license_a) is False
        clock.shift(django_settings.USAGE_REFRESH_INTERVAL_SECONDS - 1)
        assert usage_refresh_claim(license=license_a) is False
        clock.shift(1)
        assert usage_refresh_claim(license=license_a) is True


def test_refresh_with_the_upstream_down_shows_data_as_of_the_last_sync_in_local_time(
    start_simulator, new_york, client_ny
):
    license, _ = new_york
    server = start_simulator(profiles=[profile_for(license, days=1)])
    # 19:30 UTC is 14:30 in New York in November.
    with time_machine.travel(datetime(2026, 11, 20, 19, 30, tzinfo=UTC), tick=False):
        assert usage_sync_license(license=license, trigger="test").complete
    server.stop()
    with time_machine.travel(datetime(2026, 11, 20, 19, 50, tzinfo=UTC), tick=False):
        shown = refresh(client_ny, license)
    assert shown == ["Upstream is not answering — showing data as of 14:30."]


def test_refresh_with_the_upstream_down_before_any_sync_says_so(
    start_simulator, license_a, client_a
):
    server = start_simulator(profiles=[profile_for(license_a, days=1)])
    server.stop()
    assert refresh(client_a, license_a) == ["Upstream is not answering — no usage has arrived yet."]


def test_refresh_out_of_time_hands_the_rest_to_a_worker(
    start_simulator, license_a, client_a, settings, monkeypatch
):
    # About 40 pages of 100 ms: the budget takes the first page even on a busy machine,
    # and never the last.
    settings.UPSTREAM_PAGE_SIZE = 20
    settings.USAGE_REFRESH_BUDGET_SECONDS = 1.5
    start_simulator(profiles=[profile_for(license_a, days=2)], faults=Faults(latency_ms=100))
    handed_over: list[tuple[int, str, int, dict[str, Any]]] = []

    # The hand-over runs in this process (eager) so the test sees it and what it did; a real
    # worker takes the same task in test_sync_processes.py.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)

    def watch(license_id, trigger):
        calls_then = balance_get(license_a).api_calls
        outcome = original(license_id, trigger)
        handed_over.append((license_id, trigger, calls_then, outcome))
        return outcome

    original = usage_sync_license_task.run
    monkeypatch.setattr(usage_sync_license_task, "run", watch)

    assert refresh(client_a, license_a) == [
        "More usage is still arriving — the rest will appear within a few minutes."
    ]
    [(license_id, trigger, calls_when_handed_over, outcome)] = handed_over
    summary = upstream_summary(license_key=license_a.key)
    assert (license_id, trigger) == (license_a.pk, "refresh")
    assert 0 < calls_when_handed_over < summary["records"]  # the request did part of it
    assert (
        outcome["complete"]
        and outcome["records_charged"] == summary["records"] - calls_when_handed_over
    )
    assert_ledger_matches_upstream(license_a, summary)


def test_refresh_is_post_only_and_another_license_is_a_404(
    start_simulator, license_a, license_b, client_a
):
    start_simulator(profiles=[profile_for(license_a, days=1), profile_for(license_b, days=1)])
    assert client_a.get(refresh_url(license_a)).status_code == 405
    assert client_a.post(refresh_url(license_b)).status_code == 404
    assert client_a.get(api_page_url(license_b)).status_code == 404
    assert client_a.post(api_page_url(license_b)).status_code == 404
    assert balance_get(license_b).api_calls == 0


def test_api_page_shows_the_masked_key_and_a_copyable_example(license_a, client_a):
    response = client_a.get(api_page_url(license_a))
    html = response.content.decode()
    assert response.status_code == 200
    assert license_a.masked_key in html
    assert license_a.key not in html
    # Issue 15: the example is a real AI call to the customer's API address (not the
    # simulator's ping), with the key masked until an owner reveals it.
    assert f"Authorization: Bearer {license_a.masked_key}" in html
    assert 'data-copy-target="example-request"' in html and 'id="example-request"' in html
    # Ready for a strict CSP: no inline scripts or style attributes.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "style=" not in html


def test_api_ping_shows_the_answer_and_its_latency(start_simulator, license_a, client_a):
    start_simulator(profiles=[profile_for(license_a, days=1)], faults=Faults(latency_ms=80))
    response = client_a.post(api_page_url(license_a))
    html = response.content.decode()
    assert response.status_code == 200
    ping = response.context["ping"]
    assert ping.ok and ping.status_code == 200 and ping.latency_ms >= 40
    assert re.search(r"the API answered <strong>200</strong> in <strong>\d+ ms</strong>", html)
    assert f"&quot;license&quot;: &quot;{license_a.masked_key}&quot;" in html
    assert license_a.key not in html


def test_api_ping_with_the_upstream_down_is_a_clear_error(start_simulator, license_a, client_a):
    server = start_simulator(profiles=[profile_for(license_a, days=1)])
    server.stop()
    html = client_a.post(api_page_url(license_a)).content.decode()
    assert "The API refused the connection." in html
    assert "The API did not answer" in html


def test_api_ping_for_a_license_the_upstream_does_not_know_says_so(
    start_simulator, license_a, license_b, client_a
):
    start_simulator(profiles=[profile_for(license_b, days=1)])
    html = client_a.post(api_page_url(license_a)).content.decode()
    # Issue 15: the error names the license by its masked key, never the full one.
    assert f"The API answered 404: unknown license {license_a.masked_key}." in html
    assert license_a.key not in html


def visible_text(html: str) -> str:
    """What a person reads on a page: its text, without tags, comments or scripts."""
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag: str, attrs: list) -> None:
            self.skip += tag in ("script", "style")

        def handle_endtag(self, tag: str) -> None:
            self.skip -= tag in ("script", "style")

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def test_the_test_api_page_speaks_the_customers_words(start_simulator, license_a, client_a):
    """Issue 28: the Test API page said "Check the upstream", "a metering service" and
    "Upstream refused the connection": the provider's words. The customer reads about the
    API they call, whatever happens: the page, a check that works, one that fails, and
    one asked while another is running."""
    jargon = re.compile(r"upstream|metering", re.IGNORECASE)
    page = visible_text(client_a.get(api_page_url(license_a)).content.decode())
    assert "Check your license key with the API" in page
    assert not jargon.search(page), jargon.findall(page)
    server = start_simulator(profiles=[profile_for(license_a, days=1)])
    works = visible_text(client_a.post(api_page_url(license_a)).content.decode())
    assert "the API answered 200" in works and not jargon.search(works)
    server.stop()
    down = visible_text(client_a.post(api_page_url(license_a)).content.decode())
    assert "The API refused the connection." in down and not jargon.search(down), down
    holder = lease_acquire(key=f"upstream_web:{license_a.pk}", seconds=60)  # a test running
    assert holder is not None
    try:
        busy = client_a.post(api_page_url(license_a), follow=True)
    finally:
        lease_release(key=f"upstream_web:{license_a.pk}", holder=holder)
    said = [str(m) for m in busy.context["messages"]]
    assert said == [
        "A test of this license is already running — send another once it has answered."
    ]
