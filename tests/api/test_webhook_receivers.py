"""Hostile webhook receivers hold nothing (issue 29): a receiver that dribbles its answer
for a minute, or answers gigabytes, costs its own delivery a few seconds at most — never a
lock on the license, another endpoint's delivery, or the worker's memory."""

import json
import socket
import subprocess
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import License
from api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from api.outbound import UnsafeUrl, post_json, url_target
from api.services import webhook_endpoint_create
from api.webhooks import webhook_deliveries_take_due, webhook_delivery_attempt
from billing.models import LicenseBalance
from billing.refunds.services import refund_issue
from portal.leases import lease_acquire
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.conftest import staff_force_login
from tests.hostile import Dribbler, Flood
from tests.ledger import buy
from tests.processes import PYTHON, ROOT, child_env


def owed_delivery(license: License, endpoint: WebhookEndpoint, event: WebhookEvent | None = None):
    """An event owed to an endpoint, as api.events records it (without handing it over)."""
    event = event or WebhookEvent.objects.create(
        license=license, public_id=f"evt_{time.monotonic_ns()}", type="balance.low", data={}
    )
    delivery = WebhookDelivery.objects.create(license=license, event=event, endpoint=endpoint)
    return event, delivery


def endpoint_for(owner, license: License, url: str) -> WebhookEndpoint:
    endpoint, _ = webhook_endpoint_create(
        acting_user=owner, license=license, url=url, events=["balance.low"]
    )
    return endpoint


def in_thread(work) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `work()` in a thread with its own database connection; its result in `out`."""
    out: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            out["result"] = work()
        except BaseException as exc:  # reported by the test
            out["error"] = exc
        finally:
            out["seconds"] = time.monotonic() - started
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


@pytest.mark.django_db(transaction=True)
def test_a_receiver_dribbling_for_a_minute_holds_nothing(alice_license, alice, receiver, settings):
    settings.WEBHOOK_DEADLINE_SECONDS = 2.0
    buy(alice_license, "20.00")
    fast = receiver()
    with Dribbler(interval=0.5, seconds=60) as slow:
        slow_endpoint = endpoint_for(alice, alice_license, slow.url())
        fast_endpoint = endpoint_for(alice, alice_license, fast.url)
        # One event owed to both endpoints of the license.
        event, slow_delivery = owed_delivery(alice_license, slow_endpoint)
        _, fast_delivery = owed_delivery(alice_license, fast_endpoint, event)

        thread, out = in_thread(lambda: webhook_delivery_attempt(delivery_id=slow_delivery.pk))
        assert slow.got_request.wait(10), "the dribbling receiver was never called"
        time.sleep(0.3)  # the receiver is now sending its first bytes

        # Meanwhile nothing waits on a lock: a second is the most anything here may wait.
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")
        started = time.monotonic()
        credit = refund_issue(
            acting_user=alice, license=alice_license, amount=Decimal("2.00"),
            reason="Goodwill for the outage", idempotency_key="goodwill-during-dribble",
        )  # fmt: skip
        buy(alice_license, "5.00")
        posted = time.monotonic() - started
        assert credit.created and posted < 1.0
        assert LicenseBalance.objects.get(license=alice_license).balance == Decimal("27.000000")

        owner = MembershipFactory(
            license=alice_license, user=UserFactory(email="olga@acme.example"), role="owner"
        ).user
        web = Client()
        web.force_login(owner)
        started = time.monotonic()
        saved = web.post(
            reverse("dashboard:alert_settings", kwargs={"license_id": alice_license.public_id}),
            {"low_balance_threshold": "7.50", "extra_emails": ""},
        )
        assert saved.status_code == 302 and time.monotonic() - started < 1.0
        assert License.objects.get(pk=alice_license.pk).low_balance_threshold == Decimal("7.5")

        # The license's other endpoint gets the same event on time.
        started = time.monotonic()
        assert webhook_delivery_attempt(delivery_id=fast_delivery.pk) == "succeeded"
        assert time.monotonic() - started < 1.0
        assert [json.loads(body)["id"] for _, body in fast.requests] == [event.public_id]

        # The dribbling attempt ends by its deadline, while the receiver would go on for a minute.
        thread.join(timeout=30)
        assert "error" not in out, out.get("error")
        assert out["result"] == "pending" and out["seconds"] < 2.0 + 1.0
        assert slow.sent < 20  # of the ~120 bytes it would have dribbled in that minute
    slow_delivery.refresh_from_db()
    assert slow_delivery.outcome == "timed out" and slow_delivery.attempts == 1


SIZE = 300 * 2**20  # 300 MB offered


@pytest.mark.django_db(transaction=True)
def test_a_receiver_answering_hundreds_of_megabytes_leaves_the_workers_memory_flat(
    alice_license, alice, receiver
):
    """The attempt runs in a worker of its own (a child process), which reports its peak
    memory before and after: reading the answer whole (as before) added ~300 MB."""
    small = receiver()
    with Flood(size=SIZE) as flood:
        big = endpoint_for(alice, alice_license, flood.url())
        tiny = endpoint_for(alice, alice_license, small.url)
        event, flooded = owed_delivery(alice_license, big)
        _, quiet = owed_delivery(alice_license, tiny, event)
        script = (
            "import json, resource\n"
            "from api.webhooks import webhook_delivery_attempt as attempt\n"
            "def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
            f"attempt(delivery_id={quiet.pk})\n"
            "before = peak()\n"
            f"status = attempt(delivery_id={flooded.pk})\n"
            "print(json.dumps({'status': status, 'grew': peak() - before}))\n"
        )
        result = subprocess.run(
            [PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=child_env(),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["status"] == "succeeded"
        assert report["grew"] < 32 * 2**20, report  # not the 300 MB offered
        assert flood.sent < 64 * 2**20  # the rest was never asked for
    flooded.refresh_from_db()
    assert flooded.outcome == "delivered"
    assert "answer cut at 4096 bytes" in flooded.last_error  # the detail, for staff


def test_the_delivery_log_gives_the_customer_a_plain_outcome_and_staff_the_detail(
    client, alice_license, alice, receiver, admin_user, settings
):
    settings.WEBHOOK_DEADLINE_SECONDS = 1.0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    cases = [(closed, "could not connect"), (receiver(401).url, "answered 401")]
    with Dribbler(interval=0.2, seconds=5) as slow:
        cases.append((slow.url(), "timed out"))
        for url, outcome in cases:
            endpoint = endpoint_for(alice, alice_license, url)
            _, delivery = owed_delivery(alice_license, endpoint)
            assert webhook_delivery_attempt(delivery_id=delivery.pk) == "pending"
            client.force_login(alice)
            page = client.get(
                reverse(
                    "dashboard:webhook",
                    kwargs={"license_id": alice_license.public_id, "endpoint_id": endpoint.pk},
                )
            ).content.decode()
            assert f"<td>{outcome}</td>" in page
            for internal in ("Error", "errno", "Errno", "Timeout", "refused"):
                assert internal not in page.split("Delivery log")[1], (outcome, internal)
            delivery.refresh_from_db()
            assert delivery.last_error.startswith(outcome)
    staff_client = Client()
    staff_force_login(staff_client, admin_user)
    staff = staff_client.get(
        reverse("admin:accounts_license_change", args=[alice_license.pk])
    ).content.decode()
    assert "last error: could not connect (ConnectError" in staff


@pytest.mark.parametrize(
    "url",
    [
        "https://[64:ff9b::a00:5]/hook",  # NAT64 of 10.0.0.5
        "https://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of the metadata address 169.254.169.254
        "https://[64:ff9b:1::a00:5]/hook",  # local-use NAT64
        "https://[2002:a00:5::1]/hook",  # 6to4 of 10.0.0.5
        "https://[2002:c0a8:101::1]/hook",  # 6to4 of 192.168.1.1
        "https://[::10.0.0.5]/hook",  # IPv4-compatible
        "https://[::ffff:10.0.0.5]/hook",  # IPv4-mapped
        "https://[::ffff:169.254.169.254]/hook",
    ],
)
def test_ipv6_forms_of_internal_ipv4_addresses_are_refused(url, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    with pytest.raises(UnsafeUrl, match="private network"):
        url_target(url)


@pytest.mark.parametrize(
    "url", ["https://[64:ff9b::808:808]/hook", "https://[2002:808:808::1]/hook"]
)
def test_ipv6_forms_of_public_ipv4_addresses_are_allowed(url):
    assert url_target(url).url.startswith("https://[")


def test_the_address_checked_is_the_one_connected_to(receiver, monkeypatch):
    """DNS rebinding: "localhost" is checked as 127.0.0.1; later answers say 10.0.0.9. The
    request goes to the checked address, and the name is looked up once."""
    hook = receiver()
    port = hook.server.server_address[1]
    real = socket.getaddrinfo
    asked: list[str] = []

    def rebinding(host, *args, **kwargs):
        if host == "localhost":
            asked.append(host)
            address = "127.0.0.1" if len(asked) == 1 else "10.0.0.9"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    result = post_json(url=f"http://localhost:{port}/hooks", body=b"{}", headers={})
    assert result.ok and len(hook.requests) == 1
    assert asked == ["localhost"]
    assert hook.requests[0][0]["Host"] == f"localhost:{port}"


@pytest.mark.django_db
def test_a_failing_endpoint_gets_one_attempt_at_a_time(alice_license, alice, receiver):
    hook = receiver(500)
    endpoint = endpoint_for(alice, alice_license, hook.url)
    _, first = owed_delivery(alice_license, endpoint)
    _, second = owed_delivery(alice_license, endpoint)
    assert webhook_delivery_attempt(delivery_id=first.pk) == "pending"  # now failing
    assert lease_acquire(key=f"webhook_endpoint:{endpoint.pk}", seconds=60)  # one in flight
    assert webhook_delivery_attempt(delivery_id=second.pk) == "deferred"
    second.refresh_from_db()
    assert second.attempts == 0 and second.next_attempt_at is not None
    assert len(hook.requests) == 1  # the second waits for the sweeper, not for a worker


@pytest.mark.django_db
def test_the_sweeper_hands_each_due_delivery_out_once(alice_license, alice, receiver):
    endpoint = endpoint_for(alice, alice_license, receiver().url)
    _, delivery = owed_delivery(alice_license, endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at="2000-01-01T00:00Z")
    assert webhook_deliveries_take_due() == [delivery.pk]
    assert webhook_deliveries_take_due() == []  # handed out: not again while it waits
