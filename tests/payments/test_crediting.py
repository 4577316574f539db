"""Exactly-once crediting (invariant 10): a card payment becomes one purchase entry of what
Stripe captured, whatever arrives first and however often - the webhook, its retries and
replays, the browser's return, the server's own answer, or several at the same instant -
and only for intents the portal created for that license."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import pytest
from django.db import connection

from accounts.models import AuditEvent
from billing.ledger.selectors import balance_get
from billing.models import LedgerEntry
from payments.events import stripe_event_process, stripe_event_store
from payments.models import Payment, StripeEvent
from payments.services.paying import payment_refresh, payment_start
from tests.ledger import assert_ledger_consistent, buy
from tests.payments.conftest import CARD_DECLINED_ON_CHARGE, event, post_event, reconciles
from tests.payments.helpers import save_card, succeeded_intent_not_yet_credited

pytestmark = pytest.mark.django_db


def this_month() -> str:
    return f"{datetime.now(UTC):%Y-%m}"


def purchases(license):
    return list(
        LedgerEntry.objects.for_license(license).filter(
            kind="purchase", external_id__startswith="pi:"
        )
    )


@pytest.fixture
def webhook(client, celery_eager, django_capture_on_commit_callbacks):
    """Post a signed event and let its task run, as a worker would."""

    def post(payload, signature=None):
        with django_capture_on_commit_callbacks(execute=True):
            return post_event(client, payload, signature)

    return post


def test_buying_25_dollars_credits_exactly_25_and_keeps_a_receipt(localstripe, license_a, member_a):
    save_card(localstripe, license_a, member_a)
    payment = payment_start(license=license_a, acting_user=member_a, amount=Decimal("25"))
    assert payment.status == "succeeded"
    assert balance_get(license_a).balance == Decimal("25.000000")
    [entry] = purchases(license_a)
    assert entry.amount == Decimal("25.000000")
    assert entry.external_id == f"pi:{payment.intent_id}"
    assert payment.ledger_entry_id == entry.pk and payment.receipt_number
    assert payment.card_brand == "visa" and payment.card_last4 == "4242"
    assert AuditEvent.objects.filter(action="payment.status", license=license_a).exists()
    assert_ledger_consistent(license_a)
    assert "reconcile with the ledger" in reconciles(this_month())


def test_replayed_and_duplicated_webhooks_and_the_browser_return_credit_once(
    localstripe, license_a, member_a, webhook
):
    save_card(localstripe, license_a, member_a)
    payment, intent = succeeded_intent_not_yet_credited(license_a, member_a)
    succeeded = event("payment_intent.succeeded", intent, "evt_first")
    assert webhook(succeeded).status_code == 200
    assert balance_get(license_a).balance == Decimal("25.000000")
    # The same event again (Stripe retries, an attacker replays it): recognised, nothing new.
    for _ in range(3):
        response = webhook(succeeded)
        assert response.status_code == 200 and response.json()["duplicate"] is True
    # Another event about the same intent, and the browser coming back.
    assert webhook(event("payment_intent.succeeded", intent, "evt_second")).status_code == 200
    payment_refresh(payment=payment)
    assert len(purchases(license_a)) == 1
    assert balance_get(license_a).balance == Decimal("25.000000")
    assert StripeEvent.objects.count() == 2
    assert_ledger_consistent(license_a)


def test_events_out_of_order_never_move_a_payment_back_or_credit_twice(
    localstripe, license_a, member_a, webhook
):
    save_card(localstripe, license_a, member_a)
    payment, intent = succeeded_intent_not_yet_credited(license_a, member_a, "10")
    stale = {
        **intent,
        "status": "requires_payment_method",
        "last_payment_error": {"message": "old"},
    }
    # The failure of an earlier attempt arrives first: the portal asks Stripe, which says
    # succeeded, so it is credited now...
    webhook(event("payment_intent.payment_failed", stale, "evt_failed_early"))
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    # ...and neither the success arriving later nor that failure once more undo or repeat it.
    webhook(event("payment_intent.succeeded", intent, "evt_succeeded_late"))
    webhook(event("payment_intent.payment_failed", stale, "evt_failed_late"))
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert [e.amount for e in purchases(license_a)] == [Decimal("10.000000")]


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_and_returns_credit_once(localstripe, license_a, member_a):
    save_card(localstripe, license_a, member_a)
    payment, intent = succeeded_intent_not_yet_credited(license_a, member_a, "50")
    rows = [
        stripe_event_store(event=event("payment_intent.succeeded", intent, f"evt_c{i}"))[0]
        for i in range(6)
    ]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def run(work):
        try:
            barrier.wait(timeout=10)
            work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    works: list[Callable[[], object]] = [partial(stripe_event_process, event_pk=r.pk) for r in rows]
    works += [lambda: payment_refresh(payment=Payment.objects.get(pk=payment.pk))] * 2
    threads = [threading.Thread(target=run, args=(w,)) for w in works]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(purchases(license_a)) == 1
    assert balance_get(license_a).balance == Decimal("50.000000")
    assert_ledger_consistent(license_a)


@pytest.mark.parametrize(
    "tamper",
    ["wrong secret", "no signature", "changed body", "too old", "an hour ahead"],
)
def test_a_forged_or_stale_signature_is_400_and_changes_nothing(
    localstripe, license_a, member_a, client, tamper
):
    from tests.payments.conftest import signed

    save_card(localstripe, license_a, member_a)
    _payment, intent = succeeded_intent_not_yet_credited(license_a, member_a)
    payload = event("payment_intent.succeeded", intent, "evt_forged")
    body, header = signed(payload)
    if tamper == "wrong secret":
        body, header = signed(payload, secret="whsec_guessed")
    elif tamper == "no signature":
        header = ""
    elif tamper == "changed body":
        body = body.replace(b'"amount": 2500', b'"amount": 250000')
    elif tamper == "too old":
        body, header = signed(payload, at=int(datetime.now(UTC).timestamp()) - 3600)
    elif tamper == "an hour ahead":  # the library refuses only stale stamps (issue 29)
        body, header = signed(payload, at=int(datetime.now(UTC).timestamp()) + 3600)
    response = client.post(
        "/payments/stripe/webhook/", data=body, content_type="application/json",
        **({"HTTP_STRIPE_SIGNATURE": header} if header else {}),
    )  # fmt: skip
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    assert purchases(license_a) == []
    assert balance_get(license_a).balance == 0


def test_an_intent_the_portal_did_not_create_credits_nothing_and_is_shown_to_staff(
    localstripe, license_a, member_a, webhook
):
    card = save_card(localstripe, license_a, member_a)
    from payments.services.cards import account_get

    # Someone creates a payment with Stripe directly, claiming to be for license A.
    foreign = localstripe.api(
        "POST", "/v1/payment_intents", amount=100000, currency="usd",
        customer=account_get(license_a).stripe_customer_id, payment_method=card.payment_method_id,
        confirm="true", **{"metadata[license]": str(license_a.public_id)},
    )  # fmt: skip
    assert foreign["status"] == "succeeded"
    assert webhook(event("payment_intent.succeeded", foreign, "evt_foreign")).status_code == 200
    assert purchases(license_a) == []
    row = StripeEvent.objects.get(event_id="evt_foreign")
    assert row.needs_attention and "did not create" in row.outcome


def test_another_licenses_intent_or_a_changed_amount_credits_nothing(
    localstripe, license_a, license_b, member_a, webhook
):
    save_card(localstripe, license_a, member_a)
    payment, intent = succeeded_intent_not_yet_credited(license_a, member_a, "25")
    # The same intent told as license B's, or for more money: refused, logged for staff.
    other = {
        **intent,
        "metadata": {"license": str(license_b.public_id), "payment": str(payment.pk)},
    }
    webhook(event("payment_intent.succeeded", other, "evt_other_license"))
    bigger = {**intent, "amount": 250000}
    webhook(event("payment_intent.succeeded", bigger, "evt_bigger"))
    assert purchases(license_a) == [] and purchases(license_b) == []
    outcomes = dict(StripeEvent.objects.values_list("event_id", "outcome"))
    assert "another license" in outcomes["evt_other_license"]
    assert "amount changed" in outcomes["evt_bigger"]
    assert StripeEvent.objects.filter(needs_attention=True).count() == 2
    # The genuine event still credits the genuine amount, once.
    webhook(event("payment_intent.succeeded", intent, "evt_genuine"))
    assert [e.amount for e in purchases(license_a)] == [Decimal("25.000000")]


def test_an_event_we_do_not_handle_is_accepted_and_ignored(localstripe, license_a, webhook):
    buy(license_a, "5", "manual-1")
    response = webhook(event("customer.created", {"id": "cus_x", "object": "customer"}, "evt_cus"))
    assert response.status_code == 200
    assert StripeEvent.objects.get(event_id="evt_cus").outcome == "ignored"
    assert balance_get(license_a).balance == Decimal("5.000000")


def test_a_declined_card_credits_nothing_and_says_why(localstripe, license_a, member_a):
    save_card(localstripe, license_a, member_a, CARD_DECLINED_ON_CHARGE)
    payment = payment_start(license=license_a, acting_user=member_a, amount=Decimal("25"))
    assert payment.status == "failed"
    assert "declined" in payment.failure_message.lower()
    assert purchases(license_a) == [] and balance_get(license_a).balance == 0
