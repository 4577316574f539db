"""Each money movement reaches a customer's endpoint as its own webhook type (issue 26): a
card refund is `purchase.refunded` with the amount refunded (positive) and the purchase it
reverses, goodwill is `credit.granted` with its grant, the unused rest of a grant is
`credit.expired` once however often the expiry runs, and a usage refund stays
`refund.issued`. An endpoint that chose refund.issued before these types existed was
subscribed to the types it used to receive under that name (api migration 0002)."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from importlib import import_module

import pytest
import time_machine
from django.apps import apps as django_apps
from django.contrib.auth.models import Group

from accounts.models import License, User
from accounts.roles import BILLING
from api.models import WebhookEndpoint, WebhookEvent
from api.services import webhook_endpoint_create
from billing.credits.expiry import credits_expire
from billing.credits.services import credit_grant_issue
from billing.models import LedgerEntry
from billing.purchases.refunds import purchase_refund_record
from tests.accounts.factories import UserFactory
from tests.ledger import buy, refund, spend

pytestmark = pytest.mark.django_db

EVERY_MONEY_TYPE = [
    "purchase.succeeded",
    "purchase.refunded",
    "credit.granted",
    "refund.issued",
    "credit.expired",
]


@pytest.fixture
def billing_user(db: None) -> User:
    user = UserFactory(email="billing-actor@portal.example", is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING))
    return user


def received(hook) -> list[dict]:
    return [json.loads(body) for _, body in hook.requests]


def test_a_card_refund_is_purchase_refunded_with_the_amount_refunded_and_its_purchase(
    alice_license: License, alice: User, receiver, committed
) -> None:
    hook = receiver()
    webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=hook.url, events=EVERY_MONEY_TYPE
    )
    purchase = committed(buy, alice_license, "10.00").entry
    refunded = committed(
        purchase_refund_record,
        license=alice_license,
        purchase=purchase,
        amount=Decimal("4"),
        external_id="re:test_1",
        reason="Customer asked",
    ).entry
    assert [e["type"] for e in received(hook)] == ["purchase.succeeded", "purchase.refunded"]
    [event] = WebhookEvent.objects.filter(type="purchase.refunded")
    data = received(hook)[1]["data"]
    assert data == event.data
    assert data["amount"] == "4.000000"  # what went back to the card, as its statement says
    assert data["purchase_id"] == purchase.pk and data["transaction_id"] == refunded.pk
    assert data["movement"] == "purchase_refund" and data["balance_after"] == "6.000000"
    assert not WebhookEvent.objects.filter(type="refund.issued").exists()


def test_goodwill_is_credit_granted_and_a_usage_refund_stays_refund_issued(
    alice_license: License, alice: User, billing_user: User, receiver, committed
) -> None:
    hook = receiver()
    webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=hook.url, events=EVERY_MONEY_TYPE
    )
    expires = datetime(2099, 1, 31, tzinfo=UTC)
    committed(
        credit_grant_issue,
        acting_user=billing_user,
        license=alice_license,
        amount=Decimal("5"),
        kind="promotional",
        reason="Sorry for the outage",
        idempotency_key="goodwill-1",
        expires_at=expires,
    )
    committed(spend, alice_license, "1.25")
    charge = LedgerEntry.objects.for_license(alice_license).get(kind="usage")
    committed(refund, alice_license, charge, "0.25", billing_user)
    events = received(hook)
    assert [e["type"] for e in events] == ["credit.granted", "refund.issued"]
    credit, usage_refund = (e["data"] for e in events)
    assert credit["amount"] == "5.000000" and credit["grant_kind"] == "promotional"
    assert credit["expires_at"] == expires.isoformat() and credit["movement"] == "credit"
    assert usage_refund["amount"] == "0.250000" and usage_refund["charge_id"] == charge.pk


def test_an_expired_remainder_is_credit_expired_once_however_often_the_expiry_runs(
    alice_license: License, alice: User, billing_user: User, receiver, committed
) -> None:
    hook = receiver()
    webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=hook.url, events=["credit.expired"]
    )
    with time_machine.travel(datetime(2026, 3, 2, 12, tzinfo=UTC), tick=False):
        granted = committed(
            credit_grant_issue,
            acting_user=billing_user,
            license=alice_license,
            amount=Decimal("5"),
            kind="promotional",
            reason="Trial credit",
            idempotency_key="trial-1",
            expires_at=datetime(2026, 3, 10, tzinfo=UTC),
        ).entry
        committed(spend, alice_license, "2")
    with time_machine.travel(datetime(2026, 3, 11, tzinfo=UTC), tick=False):
        committed(credits_expire)
        committed(credits_expire)  # the beat and a person at once, or a retry
    [event] = received(hook)
    assert event["type"] == "credit.expired"
    data = event["data"]
    assert data["amount"] == "3.000000" and data["balance_after"] == "0.000000"
    assert data["credit_id"] == granted.pk and data["granted"] == "5.000000"
    assert data["grant_kind"] == "promotional"
    assert data["expires_at"] == datetime(2026, 3, 10, tzinfo=UTC).isoformat()
    assert WebhookEvent.objects.filter(type="credit.expired").count() == 1


def test_endpoints_subscribed_to_refund_issued_are_subscribed_to_what_it_used_to_carry(
    alice_license: License,
) -> None:
    migration = import_module(
        "api.migrations.0002_refund_subscribers_get_purchase_refunds_and_credits"
    )
    old = WebhookEndpoint.objects.create(
        license=alice_license, url="https://a.example/h", events=["refund.issued"], secret="s"
    )
    other = WebhookEndpoint.objects.create(
        license=alice_license, url="https://b.example/h", events=["balance.low"], secret="s"
    )
    migration.subscribe(django_apps, None)
    old.refresh_from_db()
    other.refresh_from_db()
    assert old.events == ["refund.issued", "purchase.refunded", "credit.granted"]
    assert other.events == ["balance.low"]
