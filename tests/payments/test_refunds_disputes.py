"""Refunds of card purchases and disputes: the billing team's refund goes through Stripe
first and is recorded once; a refund made in Stripe's dashboard is recorded once from
charge.refunded; refunds never pass what is left of the purchase; a dispute flags the
license for the billing team and its outcome is recorded. reconcile_ledger stays clean."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core import mail

from billing.ledger.selectors import balance_get
from billing.models import LedgerEntry
from payments.models import Dispute, PaymentRefund, StripeEvent
from payments.services.paying import payment_start
from portal.moments import format_local_time
from tests.ledger import assert_ledger_consistent
from tests.matching import search
from tests.payments.conftest import event, post_event, reconciles
from tests.payments.helpers import save_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(localstripe, license_a, member_a):
    save_card(localstripe, license_a, member_a)
    payment = payment_start(license=license_a, acting_user=member_a, amount=Decimal("25"))
    assert payment.status == "succeeded"
    return payment


@pytest.fixture
def webhook(client, celery_eager, django_capture_on_commit_callbacks):
    def post(payload):
        with django_capture_on_commit_callbacks(execute=True):
            return post_event(client, payload)

    return post


def refund_url(client, entry) -> str:
    """Where "Refund this charge" on the purchase's ledger entry page leads the billing team
    (payments' card refund page: billing only links to it)."""
    page = client.get(f"/admin/billing/ledgerentry/{entry.pk}/change/")
    return search(r'href="([^"]+)" class="refund-link"', page.content.decode()).group(1)


def refund_page(client, entry):
    return client.get(refund_url(client, entry))


def form_key(response):
    return search(r'name="idempotency_key" value="([^"]+)"', response.content.decode()).group(1)


def card_refunds(license):
    return list(LedgerEntry.objects.for_license(license).filter(kind="refund").order_by("id"))


def stripe_refunds(localstripe, payment):
    return localstripe.api("GET", f"/v1/refunds?payment_intent={payment.intent_id}")["data"]


def charge_of(localstripe, payment):
    intent = localstripe.api("GET", f"/v1/payment_intents/{payment.intent_id}")
    charge = intent["latest_charge"]
    return localstripe.api(
        "GET", f"/v1/charges/{charge['id'] if isinstance(charge, dict) else charge}"
    )


def test_a_billing_refund_goes_through_stripe_then_the_ledger_once(
    localstripe, paid, license_a, billing_client, webhook
):
    purchase = paid.ledger_entry
    url = refund_url(billing_client, purchase)
    assert url == f"/admin/payments/payment/purchase/{purchase.pk}/refund/"
    page = billing_client.get(url)
    assert page.status_code == 200 and "Refund purchase" in page.content.decode()
    key = form_key(page)
    form = {"amount": "5.00", "reason": "Customer asked", "idempotency_key": key}
    for _ in range(2):  # a double submit
        response = billing_client.post(url, form)
        assert response.status_code == 302
    [refund] = card_refunds(license_a)
    assert refund.amount == Decimal("-5.000000") and refund.refund_of_id == purchase.pk
    [at_stripe] = stripe_refunds(localstripe, paid)
    assert at_stripe["amount"] == 500 and refund.external_id == f"re:{at_stripe['id']}"
    assert PaymentRefund.objects.get().ledger_entry_id == refund.pk
    # Stripe then tells us about the same refund: nothing new.
    webhook(event("charge.refunded", charge_of(localstripe, paid), "evt_refunded_1"))
    assert len(card_refunds(license_a)) == 1
    balance = balance_get(license_a)
    assert balance.balance == Decimal("20.000000")
    # Total Purchased is gross; the refund to the card is beside it (issue 26).
    assert balance.total_purchased == Decimal("25.000000") and balance.total_refunded == 0
    assert balance.total_purchase_refunded == Decimal("5.000000")
    assert_ledger_consistent(license_a)
    assert "reconcile with the ledger" in reconciles(f"{datetime.now(UTC):%Y-%m}")


def test_a_refund_made_in_stripes_dashboard_is_recorded_once(localstripe, paid, license_a, webhook):
    localstripe.api("POST", "/v1/refunds", payment_intent=paid.intent_id, amount="700")
    charge = charge_of(localstripe, paid)
    webhook(event("charge.refunded", charge, "evt_dash_1"))
    webhook(event("charge.refunded", charge, "evt_dash_1"))  # replayed
    webhook(event("charge.refunded", charge, "evt_dash_2"))  # delivered again as new
    [refund] = card_refunds(license_a)
    assert refund.amount == Decimal("-7.000000") and refund.created_by_id is None
    assert balance_get(license_a).balance == Decimal("18.000000")
    assert_ledger_consistent(license_a)


def test_a_card_refund_emails_the_owners_once_in_the_licenses_time(
    localstripe, paid, license_a, member_a, webhook
):
    license_a.timezone = "America/New_York"
    license_a.save(update_fields=["timezone"])
    localstripe.api("POST", "/v1/refunds", payment_intent=paid.intent_id, amount="400")
    charge = charge_of(localstripe, paid)
    webhook(event("charge.refunded", charge, "evt_mail_1"))
    webhook(event("charge.refunded", charge, "evt_mail_2"))  # the same refund, told again
    [refund] = card_refunds(license_a)
    purchase = paid.ledger_entry
    [email] = [m for m in mail.outbox if "Refund of card purchase" in m.subject]
    assert email.to == [member_a.email]
    assert email.subject.startswith(f"Refund of card purchase #{purchase.pk}: $4.000000")
    assert format_local_time(refund.occurred_at, "America/New_York") in email.body
    assert paid.card_label and paid.card_label in email.body
    assert "$21.000000" in email.body  # the balance after


def test_refunds_never_pass_what_is_left_of_the_purchase(
    localstripe, paid, license_a, billing_client
):
    purchase = paid.ledger_entry
    url = refund_url(billing_client, purchase)
    first = {
        "amount": "20",
        "reason": "most of it",
        "idempotency_key": form_key(refund_page(billing_client, purchase)),
    }
    billing_client.post(url, first)
    second = {
        "amount": "5.01",
        "reason": "too much",
        "idempotency_key": form_key(refund_page(billing_client, purchase)),
    }
    response = billing_client.post(url, second)
    assert response.status_code == 200
    assert "At most $5.000000" in response.content.decode()
    assert [r.amount for r in card_refunds(license_a)] == [Decimal("-20.000000")]
    assert len(stripe_refunds(localstripe, paid)) == 1
    assert_ledger_consistent(license_a)


def test_a_dispute_flags_the_license_tells_billing_and_records_its_outcome(
    localstripe, paid, license_a, webhook, settings
):
    settings.BILLING_TEAM_EMAIL = "billing-team@portal.example"
    dispute = {
        "id": "dp_test_1", "object": "dispute", "amount": 2500, "charge": "ch_x",
        "payment_intent": paid.intent_id, "reason": "fraudulent", "status": "needs_response",
    }  # fmt: skip
    webhook(event("charge.dispute.created", dispute, "evt_dp_created"))
    webhook(event("charge.dispute.created", dispute, "evt_dp_created"))
    row = Dispute.objects.get()
    assert row.license_id == license_a.pk and row.status == "needs_response"
    assert StripeEvent.objects.get(event_id="evt_dp_created").needs_attention
    [told] = [m for m in mail.outbox if not m.subject.startswith("Invoice ")]
    assert told.to == ["billing-team@portal.example"] and "dp_test_1" in told.body
    lost = {**dispute, "status": "lost"}
    webhook(event("charge.dispute.closed", lost, "evt_dp_closed"))
    webhook(event("charge.dispute.closed", lost, "evt_dp_closed_again"))
    row.refresh_from_db()
    assert row.status == "lost" and row.closed_at is not None
    [taken_back] = card_refunds(license_a)
    assert taken_back.amount == Decimal("-25.000000") and taken_back.external_id == "dp:dp_test_1"
    assert balance_get(license_a).balance == 0
    assert_ledger_consistent(license_a)
    assert "reconcile with the ledger" in reconciles(f"{datetime.now(UTC):%Y-%m}")


def test_a_card_purchase_has_an_invoice_and_its_card_refund_a_credit_note_linked_to_it(
    localstripe, paid, license_a, billing_client, webhook, celery_eager,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from billing.models import Document

    invoice = Document.objects.get(entry=paid.ledger_entry)
    assert invoice.kind == "invoice" and invoice.total_cents == 2500
    assert invoice.payment_method == paid.card_label  # "Visa •••• 4242"
    url = refund_url(billing_client, paid.ledger_entry)
    key = form_key(billing_client.get(url))
    form = {"amount": "10.00", "reason": "Customer asked", "idempotency_key": key}
    with django_capture_on_commit_callbacks(execute=True):
        assert billing_client.post(url, form).status_code == 302
    [refund] = card_refunds(license_a)
    note = Document.objects.get(entry=refund)
    assert note.kind == "credit_note" and note.total_cents == 1000
    assert note.invoice == invoice and list(invoice.credit_notes.all()) == [note]
    [emailed] = [m for m in mail.outbox if note.number in m.subject]
    [(name, content, _)] = emailed.attachments
    assert name == f"{note.number}.pdf" and content.startswith(b"%PDF")
    # Stripe's own charge.refunded for the same refund: no second credit note.
    webhook(event("charge.refunded", charge_of(localstripe, paid), "evt_refunded_note"))
    assert Document.objects.filter(kind="credit_note").count() == 1
