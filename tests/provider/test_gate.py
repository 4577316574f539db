"""The gate (`POST /gate/v1/authorize`): allowed estimates are held against the credit
available above the floor and within the monthly cap, released by their usage or by time,
each refusal names its reason, and the database being slow or gone is `unavailable`."""

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from accounts.models import AuditEvent, License
from billing.limits.gate import GateAnswer, gate_authorize
from billing.limits.holds import gate_holds_prune
from billing.limits.selectors import spend_limits_get
from billing.limits.services import spend_limit_set
from billing.models import GateHold
from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory
from tests.ledger import buy, spend
from tests.processes import WebServer, child_env, current_database_url, free_port
from tests.provider.conftest import bearer

URL = "/gate/v1/authorize"
CENT = Decimal("0.01")


def authorize(license: License, estimate: str | Decimal, request_id: str) -> GateAnswer:
    return gate_authorize(
        license_key=license.key, estimate=Decimal(estimate), request_id=request_id
    )


def ask(client: Client, token: str, body: Any) -> Any:
    return client.post(
        URL,
        data=json.dumps(body),
        content_type="application/json",
        **bearer(token),  # type: ignore[arg-type]
    )


@pytest.mark.django_db(transaction=True)
def test_100_concurrent_authorizations_of_a_cent_against_fifty_cents_allow_exactly_50(
    settings: Settings,
):
    # A burst on one license queues on its row; the test is about what is allowed, so the
    # queue may take as long as the machine needs.
    settings.GATE_LOCK_TIMEOUT_MS = 30_000
    settings.GATE_STATEMENT_TIMEOUT_MS = 30_000
    license = LicenseFactory(key="BURST-000001")
    buy(license, "0.50")
    threads = 20  # at once, each with its own connection (the cluster is shared)
    start = threading.Barrier(threads)

    def burst(n: int) -> list[GateAnswer]:
        try:
            start.wait()
            return [authorize(license, CENT, f"req-{n}-{i}") for i in range(100 // threads)]
        finally:
            connection.close()

    with ThreadPoolExecutor(threads) as pool:
        answers = [a for batch in pool.map(burst, range(threads)) for a in batch]

    assert len(answers) == 100
    assert sum(a.allow for a in answers) == 50
    assert {a.reason for a in answers if not a.allow} == {"balance_exhausted"}
    held = GateHold.objects.filter(allowed=True)
    assert held.count() == 50 and sum(h.estimate for h in held) == Decimal("0.50")
    assert spend_limits_get(license=license).available == 0


@pytest.mark.django_db
def test_a_usage_record_releases_its_hold(client: Client, service_token: str, license_a: License):
    buy(license_a, "0.05")
    assert authorize(license_a, "0.03", "req-1").allow
    refused = authorize(license_a, "0.03", "req-2")
    assert (refused.allow, refused.reason, refused.available) == (
        False,
        "balance_exhausted",
        Decimal("0.02"),
    )
    # The call req-1 cost $0.006; its usage comes in by push, and its hold ends with it.
    pushed = client.post(
        "/ingest/v1/usage",
        data=json.dumps(
            {
                "records": [
                    {
                        "id": "call-1",
                        "license": license_a.key,
                        "occurred_at": timezone.now().isoformat(),
                        "request_id": "req-1",
                        "status": "success",
                        "input_tokens": 10_000,
                        "cached_tokens": 0,
                        "completion_tokens": 0,
                        "images": 0,
                    }
                ]
            }
        ),
        content_type="application/json",
        **bearer(service_token),  # type: ignore[arg-type]
    )
    assert pushed.json()["accepted"] == 1
    assert GateHold.objects.get(request_id="req-1").released_at is not None
    figures = spend_limits_get(license=license_a)
    assert (figures.balance, figures.held, figures.available) == (
        Decimal("0.044"),
        0,
        Decimal("0.044"),
    )
    assert authorize(license_a, "0.03", "req-3").allow


@pytest.mark.django_db
def test_an_expired_hold_frees_the_credit(license_a: License, settings: Settings):
    settings.GATE_HOLD_SECONDS = 300
    buy(license_a, "0.05")
    first = authorize(license_a, "0.05", "req-1")
    assert first.allow and first.expires_at is not None
    assert authorize(license_a, CENT, "req-2").reason == "balance_exhausted"
    with time_machine.travel(first.expires_at + timedelta(seconds=1)):
        assert spend_limits_get(license=license_a).held == 0
        assert authorize(license_a, CENT, "req-3").allow


@pytest.mark.django_db
def test_the_same_request_id_gets_the_same_answer_and_one_hold(license_a: License):
    buy(license_a, "0.05")
    first = authorize(license_a, "0.04", "req-1")
    again = authorize(license_a, "0.04", "req-1")
    assert first.allow and again.allow and again.repeated
    assert (again.available, again.as_of) == (first.available, first.as_of)
    assert GateHold.objects.count() == 1 and spend_limits_get(license=license_a).held == Decimal(
        "0.04"
    )
    refused = authorize(license_a, "0.04", "req-2")
    buy(license_a, "10")
    assert refused.reason == authorize(license_a, "0.04", "req-2").reason == "balance_exhausted"


@pytest.mark.django_db
def test_each_refusal_names_its_reason(
    client: Client, service_token: str, license_a: License, license_b: License
):
    buy(license_a, "5")
    assert ask(
        client,
        service_token,
        {"license": license_a.key, "estimate": "0.010000", "request_id": "ok"},
    ).json()["allow"]

    def reason(body: Any, status: int = 200) -> str:
        response = ask(client, service_token, body)
        assert response.status_code == status, response.content
        answer = response.json()
        assert answer["allow"] is False and answer["message"]
        assert set(answer) >= {"allow", "reason", "available", "as_of"}
        return answer["reason"]

    def body(**fields: Any) -> dict[str, Any]:
        return {"license": license_a.key, "estimate": "0.010000", "request_id": "r", **fields}

    assert reason(body(estimate="6.00", request_id="big")) == "balance_exhausted"
    user = UserFactory()
    spend(license_a, "0.99")
    spend_limit_set(acting_user=user, license=license_a, floor=Decimal(0), monthly_cap=Decimal(1))
    assert reason(body(estimate="0.02", request_id="capped")) == "monthly_cap_reached"
    license_b.status = License.Status.SUSPENDED
    license_b.save()
    assert reason(body(license=license_b.key)) == "license_suspended"
    license_b.status = License.Status.CLOSED
    license_b.save()
    assert reason(body(license=license_b.key, request_id="r2")) == "license_closed"
    assert reason(body(license="NOBODY-0000")) == "unknown_license"
    for estimate in ("abc", "0", "-0.01", 0.01, "١٠", "0.0000001", "", None):
        assert reason(body(estimate=estimate), status=400) == "bad_estimate", estimate
    for request_id in ("", None, "x" * 101, "tab\there", 7):
        assert reason(body(request_id=request_id), status=400) == "bad_request_id", request_id
    assert reason(["not", "an", "object"], status=400) == "bad_request"
    assert reason({"estimate": "0.01", "request_id": "r"}, status=400) == "bad_request"


@pytest.mark.django_db(transaction=True)
def test_a_license_row_held_elsewhere_is_unavailable_not_a_hang(
    license_a: License, settings: Settings
):
    settings.GATE_LOCK_TIMEOUT_MS = 100
    buy(license_a, "1")
    assert authorize(license_a, CENT, "req-1").allow  # its spend-limit row exists now
    with psycopg.connect(current_database_url()) as other, other.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM billing_spendlimit WHERE license_id = %s FOR UPDATE", [license_a.pk]
        )
        answer = authorize(license_a, CENT, "req-2")
    assert (answer.allow, answer.reason) == (False, "unavailable")
    assert not GateHold.objects.filter(request_id="req-2").exists()
    assert authorize(license_a, CENT, "req-2").allow  # and decides again once it may


@pytest.mark.django_db
def test_an_owners_change_of_a_limit_is_audited_and_holds_from_the_next_authorization(
    client: Client, license_a: License
):
    owner = MembershipFactory(license=license_a, user=UserFactory(email="own@alpha.example"))
    client.force_login(owner.user)
    buy(license_a, "5")
    assert authorize(license_a, "1.00", "req-1").allow
    client.post(
        f"/l/{license_a.public_id}/spend-limits/", {"overdraft": "0", "monthly_cap": "1.50"}
    )
    assert authorize(license_a, "1.00", "req-2").reason == "monthly_cap_reached"
    assert authorize(license_a, "0.50", "req-3").allow
    client.post(f"/l/{license_a.public_id}/spend-limits/", {"overdraft": "0", "monthly_cap": ""})
    assert authorize(license_a, "1.00", "req-4").allow
    changes = [
        e.changes for e in AuditEvent.objects.filter(action="spend_limit.update").order_by("id")
    ]
    assert changes == [
        {"monthly_cap": ["none", "1.500000"]},
        {"monthly_cap": ["1.500000", "none"]},
    ]
    page = client.get(f"/l/{license_a.public_id}/spend-limits/").content.decode()
    assert 'data-testid="limits-reserved">$2.500000' in page and "for 3 calls in flight" in page


@pytest.mark.django_db
def test_a_negative_floor_lets_spending_go_below_zero_as_far_as_approved(license_a: License):
    staff = UserFactory(is_staff=True, is_superuser=True)
    spend_limit_set(
        acting_user=staff,
        license=license_a,
        overdraft_approved=Decimal("1"),
        floor=Decimal("-1"),
        monthly_cap=None,
    )
    assert authorize(license_a, "0.60", "req-1").allow
    assert authorize(license_a, "0.60", "req-2").reason == "balance_exhausted"
    assert authorize(license_a, "0.40", "req-3").allow


@pytest.mark.django_db
def test_only_a_service_token_asks_the_gate(
    client: Client, license_a: License, capsys: pytest.CaptureFixture[str]
):
    capsys.readouterr()
    call_command("api_key_create", license=license_a.key, name="customer program")
    api_key = capsys.readouterr().out.strip()
    body = {"license": license_a.key, "estimate": "0.01", "request_id": "r"}
    assert ask(client, api_key, body).status_code == 401
    assert not GateHold.objects.exists()


@pytest.fixture
def gate_server(transactional_db: None) -> Iterator[Callable[..., WebServer]]:
    started: list[WebServer] = []

    def start(**env: str) -> WebServer:
        environment = child_env(env.pop("DATABASE_URL", None))
        environment.update(env)
        server = WebServer(environment)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_with_postgresql_down_the_gate_answers_unavailable(
    gate_server: Callable[..., WebServer], make_token: Callable[..., str]
):
    token = make_token()
    server = gate_server(DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nothing")
    response = httpx.post(
        f"{server.url}{URL}",
        json={"license": "ALPHA-000001", "estimate": "0.01", "request_id": "r"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert response.status_code == 503
    assert response.json()["reason"] == "unavailable" and response.json()["allow"] is False


def test_with_redis_down_the_gate_still_decides(
    gate_server: Callable[..., WebServer], make_token: Callable[..., str]
):
    license = LicenseFactory(key="REDIS-000001")
    buy(license, "1")
    token = make_token()
    dead = f"redis://127.0.0.1:{free_port()}/0"
    server = gate_server(REDIS_URL=dead, CELERY_BROKER_URL=dead, CELERY_RESULT_BACKEND=dead)
    for n, expected in ((1, True), (2, False)):
        response = httpx.post(
            f"{server.url}{URL}",
            json={"license": license.key, "estimate": "0.60", "request_id": f"r{n}"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=20,
        )
        assert response.status_code == 200, server.output()
        assert response.json()["allow"] is expected


@pytest.mark.django_db
def test_answers_are_forgotten_a_while_after_they_expire(license_a: License, settings: Settings):
    settings.GATE_ANSWER_KEEP_SECONDS = 3600
    buy(license_a, "1")
    first = authorize(license_a, CENT, "req-1")
    assert first.expires_at is not None
    with time_machine.travel(first.expires_at + timedelta(minutes=59)):
        assert gate_holds_prune() == 0
        assert authorize(license_a, CENT, "req-1").repeated
    with time_machine.travel(first.expires_at + timedelta(minutes=61)):
        assert gate_holds_prune(batch=1) == 1
        assert not authorize(license_a, CENT, "req-1").repeated
