"""Webhooks reach a real receiver on loopback: once per line crossed, signed so the
receiver can verify, retried after a failure, never sent to internal addresses."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.models import AuditEvent
from api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from api.outbound import UnsafeUrl, url_target
from api.services import webhook_endpoint_create
from api.tasks import deliver_due_webhooks
from api.webhooks import signature_verify
from tests.ledger import buy, spend

pytestmark = pytest.mark.django_db


def test_balance_low_reaches_the_receiver_once_per_crossing_signed_and_retried(
    alice_license, alice, receiver, committed
):
    hook = receiver(500)  # the receiver fails the first time
    _endpoint, secret = webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=hook.url, events=["balance.low"]
    )
    committed(buy, alice_license, "5.00")  # threshold $1.00: no event
    committed(spend, alice_license, "4.20")  # $0.80: crosses the line
    assert len(hook.requests) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code == 500
    due = delivery.next_attempt_at
    assert due is not None and due > timezone.now()

    # The retry is due a minute later; the sweeper (beat) makes it.
    with time_machine.travel(due + timedelta(seconds=1)):
        assert deliver_due_webhooks() == 1
    assert len(hook.requests) == 2
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 2

    for headers, body in hook.requests:
        assert signature_verify(secret=secret, body=body, header=headers["Webhook-Signature"])
        assert not signature_verify(
            secret="whsec_wrong", body=body, header=headers["Webhook-Signature"]
        )
        assert not signature_verify(
            secret=secret, body=body + b" ", header=headers["Webhook-Signature"]
        )
    event = json.loads(hook.requests[0][1])
    assert event["type"] == "balance.low" and event["data"]["balance"] == "0.800000"
    assert event["id"] == hook.requests[1][0]["Webhook-Id"]  # the same event, sent again
    assert event["license"] == str(alice_license.public_id)

    committed(spend, alice_license, "0.30")  # still below: no new crossing
    assert WebhookEvent.objects.count() == 1 and len(hook.requests) == 2
    committed(buy, alice_license, "5.00")  # back above the line: re-armed
    committed(spend, alice_license, "4.60")  # crosses again
    assert WebhookEvent.objects.filter(type="balance.low").count() == 2
    assert len(hook.requests) == 3
    # Subscribed to balance.low only: the purchases sent nothing.
    assert {json.loads(b)["type"] for _, b in hook.requests} == {"balance.low"}


def test_purchase_and_depleted_events_go_to_endpoints_that_chose_them(
    alice_license, alice, receiver, committed
):
    hook = receiver()
    webhook_endpoint_create(
        acting_user=alice,
        license=alice_license,
        url=hook.url,
        events=["purchase.succeeded", "balance.depleted"],
    )
    committed(buy, alice_license, "1.50")
    committed(spend, alice_license, "2.00")
    types = [json.loads(body)["type"] for _, body in hook.requests]
    assert types == ["purchase.succeeded", "balance.depleted"]
    assert json.loads(hook.requests[0][1])["data"]["amount"] == "1.500000"


def test_a_rolled_back_posting_owes_no_event(alice_license, alice, receiver, committed):
    hook = receiver()
    webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=hook.url, events=["purchase.succeeded"]
    )
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        buy(alice_license, "3.00")
        raise RuntimeError("crash after the posting")
    assert WebhookEvent.objects.count() == 0 and hook.requests == []


def test_an_endpoint_failing_for_days_is_disabled_and_the_owner_told(
    alice_license, alice, receiver, committed, settings
):
    hook = receiver(*([503] * 50))
    endpoint, _ = webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=hook.url, events=["purchase.succeeded"]
    )
    committed(buy, alice_license, "1.00")
    start = timezone.now()
    with time_machine.travel(start + timedelta(days=4)):
        committed(buy, alice_license, "1.00")
        committed(deliver_due_webhooks)
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "failed since" in endpoint.disabled_reason
    assert [m.to for m in mail.outbox if "disabled" in m.subject] == [["alice@acme.example"]]
    [audit] = AuditEvent.objects.filter(action="webhook.disable")
    assert audit.actor is None and "failed since" in audit.reason


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "http://example.com/hook",
        "ftp://example.com/",
    ],
)
def test_internal_or_plain_http_addresses_are_refused(url, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    with pytest.raises(UnsafeUrl):
        url_target(url)


def test_loopback_is_refused_when_not_allowed(alice_license, alice, settings, receiver):
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    with pytest.raises(UnsafeUrl, match="private network"):
        webhook_endpoint_create(
            acting_user=alice, license=alice_license, url=receiver().url, events=["balance.low"]
        )
    assert not WebhookEndpoint.objects.exists()


def test_every_event_type_billing_and_payments_announce_can_be_chosen():
    from api.events import EVENT_TYPES
    from api.models import WebhookEndpoint as Endpoint
    from billing.events.types import ANNOUNCED as BILLING_ANNOUNCES
    from payments.event_types import ANNOUNCED as PAYMENTS_ANNOUNCE

    assert list(Endpoint.Event.values) == list(EVENT_TYPES)
    assert set(EVENT_TYPES) == set(BILLING_ANNOUNCES) | set(PAYMENTS_ANNOUNCE)


def test_an_auto_top_up_that_cannot_be_made_is_announced(
    alice_license, alice, receiver, committed, settings
):
    from payments.models import PaymentAccount

    settings.STRIPE_SECRET_KEY = "sk_test_no_call_is_made"  # no saved card: Stripe is not asked
    hook = receiver()
    webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=hook.url, events=["auto_topup.failed"]
    )
    PaymentAccount.objects.create(
        license=alice_license,
        auto_topup_enabled=True,
        auto_topup_threshold="5.00",
        auto_topup_amount="20.00",
        auto_topup_monthly_amount="100.00",
    )
    committed(buy, alice_license, "10.00")
    committed(spend, alice_license, "6.00")  # $4.00: below the top-up line, and no card
    [(_headers, body)] = hook.requests
    event = json.loads(body)
    assert event["type"] == "auto_topup.failed"
    assert event["data"]["message"] == "There is no saved card to charge."
    assert event["data"]["auto_topup_switched_off"] is True


def test_a_dispute_opened_and_lost_is_announced_once_per_change(
    alice_license, alice, receiver, committed
):
    from payments.models import Payment
    from payments.services.disputes import dispute_record

    hook = receiver()
    webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=hook.url, events=["dispute.updated"]
    )
    entry = buy(alice_license, "25.00", ref="pi:pi_test_1").entry
    payment = Payment.objects.create(
        license=alice_license, intent_id="pi_test_1", amount="25.00", amount_cents=2500,
        status=Payment.Status.SUCCEEDED, ledger_entry=entry,
    )  # fmt: skip
    dispute = {
        "id": "dp_test_1", "amount": 2500, "payment_intent": "pi_test_1",
        "reason": "fraudulent", "status": "needs_response",
    }  # fmt: skip
    committed(dispute_record, dispute=dispute, event_type="charge.dispute.created")
    committed(dispute_record, dispute=dispute, event_type="charge.dispute.created")  # repeat
    committed(
        dispute_record, dispute={**dispute, "status": "lost"}, event_type="charge.dispute.closed"
    )
    events = [json.loads(body) for _, body in hook.requests]
    assert [(e["type"], e["data"]["status"], e["data"]["previous_status"]) for e in events] == [
        ("dispute.updated", "needs_response", None),
        ("dispute.updated", "lost", "needs_response"),
    ]
    assert events[0]["data"]["amount"] == "25.000000"
    assert events[0]["data"]["payment_id"] == payment.pk
