"""A Stripe that hangs, forgets or answers late never charges a card twice, never holds a
customer's request past its deadline, and never leaves a payment waiting for ever (issue
29): localstripe for real, behind a loopback proxy that holds its answers back."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from billing.ledger.posting import lock_balance
from billing.ledger.selectors import balance_get
from billing.models import LedgerEntry
from billing.refunds.services import refund_issue
from payments.autotopup import auto_topup_charge, auto_topup_decide, auto_topup_month_used
from payments.models import Payment, PaymentAccount, PaymentRefund, StripeEvent
from payments.services.cards import default_card
from payments.services.paying import payment_create, payment_refresh, payment_start
from payments.services.refunds import payment_refund_issue
from tests.hostile import StallingProxy
from tests.ledger import assert_ledger_consistent, buy
from tests.payments.conftest import event, post_event
from tests.payments.helpers import save_card, succeeded_intent_not_yet_credited

HELD = 30.0  # seconds the proxy holds a create's answer: longer than any deadline here


def intents_at_stripe(localstripe) -> list[dict]:
    return localstripe.api("GET", "/v1/payment_intents?limit=100")["data"]


def holding(prefix: bytes, seconds: float = HELD):
    return lambda request: seconds if request.startswith(prefix) else 0.0


@pytest.fixture
def webhook(client, celery_eager, django_capture_on_commit_callbacks):
    def post(payload):
        with django_capture_on_commit_callbacks(execute=True):
            return post_event(client, payload)

    return post


@pytest.mark.django_db
def test_a_stripe_that_hangs_then_answers_charges_the_card_once(
    localstripe, license_a, member_a, settings, webhook
):
    save_card(localstripe, license_a, member_a)
    settings.STRIPE_DEADLINE_SECONDS = 2.0
    port = int(localstripe.url.rsplit(":", 1)[1])
    with StallingProxy(port, holding(b"POST /v1/payment_intents")) as proxy:
        settings.STRIPE_API_BASE = proxy.url("")
        started = time.monotonic()
        payment = payment_start(license=license_a, acting_user=member_a, amount=Decimal("10"))
        took = time.monotonic() - started

        # The request ended by its deadline (not the 61 s of three 20 s tries), the create
        # was sent once, and Stripe made one intent: the card is charged once.
        assert took < 2.0 + 1.5
        creates = [r for r in proxy.forwarded if r.startswith(b"POST /v1/payment_intents")]
        assert len(creates) == 1
        [intent] = intents_at_stripe(localstripe)
        assert intent["amount"] == 1000 and intent["metadata"]["payment"] == str(payment.pk)
        # The outcome is unknown here: the payment waits, saying so, and counts against the
        # auto top-up caps meanwhile.
        assert payment.status == "created" and "did not answer" in payment.failure_message
        assert balance_get(license_a).balance == 0

        # Stripe's webhook then says it succeeded: credited once, found by its payment number.
        for _ in range(2):
            assert webhook(event("payment_intent.succeeded", intent, "evt_late")).status_code == 200
        payment.refresh_from_db()
        assert payment.status == "succeeded" and payment.intent_id == intent["id"]
        assert balance_get(license_a).balance == Decimal("10.000000")
        assert LedgerEntry.objects.for_license(license_a).filter(kind="purchase").count() == 1
        assert len(intents_at_stripe(localstripe)) == 1
    assert_ledger_consistent(license_a)


@pytest.mark.django_db
def test_a_definitive_stripe_error_fails_the_payment_instead_of_leaving_it_waiting(
    localstripe, license_a, member_a
):
    save_card(localstripe, license_a, member_a)
    localstripe.flush()  # Stripe restarted and forgot everything: the customer, the card
    payment = payment_start(license=license_a, acting_user=member_a, amount=Decimal("10"))
    assert payment.status == "failed" and payment.failure_message
    assert intents_at_stripe(localstripe) == [] and balance_get(license_a).balance == 0


@pytest.mark.django_db
def test_an_intent_stripe_no_longer_knows_fails_its_payment_on_the_next_look_or_event(
    localstripe, license_a, member_a, webhook
):
    save_card(localstripe, license_a, member_a)
    payment, _intent = succeeded_intent_not_yet_credited(license_a, member_a)
    other, other_intent = succeeded_intent_not_yet_credited(license_a, member_a)
    localstripe.flush()
    assert payment_refresh(payment=payment).status == "failed"  # the payment page's look
    assert "no record of this payment" in payment.failure_message

    # An event about the other one: processed once (not retried for ever), shown to staff.
    assert webhook(event("payment_intent.succeeded", other_intent, "evt_gone")).status_code == 200
    row = StripeEvent.objects.get(event_id="evt_gone")
    assert row.processed_at is not None and row.needs_attention
    other.refresh_from_db()
    assert other.status == "failed" and balance_get(license_a).balance == 0


@pytest.mark.django_db
def test_a_definitive_error_fails_an_auto_top_up_and_counts_as_a_failure(
    localstripe, license_a, member_a
):
    save_card(localstripe, license_a, member_a)
    card = default_card(license_a)
    assert card is not None
    payment = payment_create(
        license=license_a, amount=Decimal("10"), source=Payment.Source.AUTO_TOPUP, card=card,
        acting_user=None,
    )  # fmt: skip
    localstripe.flush()
    assert auto_topup_charge(payment_id=payment.pk).status == "failed"  # not stuck processing
    assert PaymentAccount.objects.get(license=license_a).auto_topup_failures == 1


@pytest.mark.django_db
def test_payments_whose_outcome_is_unknown_count_against_the_monthly_cap(
    localstripe, license_a, member_a
):
    save_card(localstripe, license_a, member_a)
    PaymentAccount.objects.filter(license=license_a).update(
        auto_topup_enabled=True, auto_topup_threshold=Decimal("5"),
        auto_topup_amount=Decimal("10"), auto_topup_monthly_count=2,
        auto_topup_monthly_amount=Decimal("500"),
    )  # fmt: skip
    card = default_card(license_a)
    assert card is not None
    for status in ("created", "processing"):  # Stripe never answered these two
        stuck = payment_create(
            license=license_a, amount=Decimal("10"), source=Payment.Source.AUTO_TOPUP,
            card=card, acting_user=None,
        )  # fmt: skip
        Payment.objects.filter(pk=stuck.pk).update(status=status)
    assert auto_topup_month_used(license_a) == (2, Decimal("20.000000"))
    with transaction.atomic():  # as the consumer of a money event that lowered it decides
        decision = auto_topup_decide(license=license_a, balance=lock_balance(license_a).balance)
    assert decision.payment is None and decision.notice is not None
    assert "limit of 2 top-ups" in decision.notice.message


@pytest.mark.django_db(transaction=True)
def test_a_card_refund_holds_no_lock_while_stripe_takes_its_time(
    localstripe, license_a, member_a, billing_user, settings
):
    save_card(localstripe, license_a, member_a)
    paid = payment_start(license=license_a, acting_user=member_a, amount=Decimal("25"))
    assert paid.status == "succeeded" and paid.ledger_entry is not None
    purchase = paid.ledger_entry
    port = int(localstripe.url.rsplit(":", 1)[1])
    with StallingProxy(port, holding(b"POST /v1/refunds", 3.0)) as proxy:
        settings.STRIPE_API_BASE = proxy.url("")
        out: dict = {}

        def refund() -> None:
            try:
                out["result"] = payment_refund_issue(
                    acting_user=billing_user, purchase=purchase, amount=Decimal("5"),
                    reason="Customer asked", idempotency_key="refund-while-slow",
                )  # fmt: skip
            except BaseException as exc:
                out["error"] = exc
            finally:
                connection.close()

        thread = threading.Thread(target=refund)
        thread.start()
        deadline = time.monotonic() + 10
        while not any(r.startswith(b"POST /v1/refunds") for r in proxy.forwarded):
            assert time.monotonic() < deadline, "the refund never reached Stripe"
            time.sleep(0.02)
        # While Stripe holds its answer, the payment and the license are free.
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")
        with transaction.atomic():
            Payment.objects.select_for_update(nowait=True).get(pk=paid.pk)
        credit = refund_issue(
            acting_user=billing_user, license=license_a, amount=Decimal("1"),
            reason="Goodwill", idempotency_key="goodwill-while-refunding",
        )  # fmt: skip
        buy(license_a, "2")
        assert credit.created
        # A second refund of the same purchase meanwhile counts the first as made.
        with pytest.raises(Exception, match="At most \\$20"):
            payment_refund_issue(
                acting_user=billing_user, purchase=purchase, amount=Decimal("20.01"),
                reason="Too much", idempotency_key="refund-too-much",
            )  # fmt: skip
        thread.join(timeout=30)
    assert "error" not in out, out.get("error")
    assert out["result"].created
    assert PaymentRefund.objects.get(idempotency_key="refund-while-slow").ledger_entry_id
    assert balance_get(license_a).balance == Decimal("23.000000")
    assert_ledger_consistent(license_a)
