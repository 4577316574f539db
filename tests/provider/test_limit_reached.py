"""Reaching a spend limit: the gate's first refusal for a limit writes one `limit.reached`
money event, which becomes a webhook and an email to the license's alert recipients; more
refusals say nothing more until an authorization passes that limit again."""

from decimal import Decimal

import pytest
from django.core import mail
from pytest_django import DjangoCaptureOnCommitCallbacks

from accounts.models import License
from api.events import WEBHOOK_CONSUMER
from api.models import WebhookEvent
from api.services import webhook_endpoint_create
from billing.events.consumers import Consumer, money_event_consumer_run, money_event_consumers
from billing.limits.gate import GateAnswer, gate_authorize
from billing.limits.notices import LIMIT_EMAIL_CONSUMER
from billing.limits.services import spend_limit_set
from billing.models import MoneyEvent
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.api.conftest import Receiver
from tests.ledger import buy, spend

pytestmark = pytest.mark.django_db


def consumer(name: str) -> Consumer:
    [found] = [c for c in money_event_consumers() if c.name == name]
    return found


def authorize(license: License, estimate: str, request_id: str) -> GateAnswer:
    return gate_authorize(
        license_key=license.key, estimate=Decimal(estimate), request_id=request_id
    )


def reached(license: License) -> list[dict]:
    return [
        e.data
        for e in MoneyEvent.objects.for_license(license).filter(type="limit.reached").order_by("id")
    ]


def test_a_limit_is_announced_once_per_crossing_by_webhook_and_email(
    license_a: License,
    celery_eager: None,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
):
    owner = MembershipFactory(license=license_a, user=UserFactory(email="own@alpha.example")).user
    hook = Receiver([])  # it is never called here: the deliveries are not handed out
    webhook_endpoint_create(
        acting_user=owner, license=license_a, url=hook.url, events=["limit.reached"]
    )
    hook.close()
    buy(license_a, "0.05")
    assert authorize(license_a, "0.03", "r1").allow
    assert authorize(license_a, "0.03", "r2").reason == "balance_exhausted"  # reached
    assert authorize(license_a, "0.03", "r3").reason == "balance_exhausted"  # still: nothing new
    [first] = reached(license_a)
    assert first["limit"] == "floor" and first["reason"] == "balance_exhausted"
    assert (first["balance"], first["held"], first["available"]) == (
        "0.050000",
        "0.030000",
        "0.020000",
    )
    assert authorize(license_a, "0.01", "r4").allow  # passes the floor again: re-armed
    assert authorize(license_a, "0.03", "r5").reason == "balance_exhausted"  # reached anew
    assert len(reached(license_a)) == 2

    with django_capture_on_commit_callbacks(execute=False):
        money_event_consumer_run(consumer(WEBHOOK_CONSUMER))
    assert list(WebhookEvent.objects.values_list("type", flat=True)) == ["limit.reached"] * 2
    with django_capture_on_commit_callbacks(execute=True):
        assert money_event_consumer_run(consumer(LIMIT_EMAIL_CONSUMER)).processed == 2
    assert len(mail.outbox) == 2
    assert mail.outbox[0].to == ["own@alpha.example"]
    assert "credit limit reached" in mail.outbox[0].subject
    assert "balance_exhausted" in str(mail.outbox[0].body)


def test_the_monthly_cap_is_a_limit_of_its_own(license_a: License):
    buy(license_a, "10")
    spend(license_a, "0.99")
    spend_limit_set(
        acting_user=UserFactory(), license=license_a, floor=Decimal(0), monthly_cap=Decimal(1)
    )
    assert authorize(license_a, "0.02", "r1").reason == "monthly_cap_reached"
    assert authorize(license_a, "0.02", "r2").reason == "monthly_cap_reached"
    [event] = reached(license_a)
    assert (event["limit"], event["monthly_cap"], event["month_used"]) == (
        "monthly_cap",
        "1.000000",
        "0.990000",
    )
