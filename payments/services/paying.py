"""Paying by card: a payment row stored and committed, then its PaymentIntent created and
confirmed at Stripe (never retried: Stripe cannot de-duplicate a create), and its fate
looked up again when the customer returns or Stripe has no record of it."""

import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from accounts.audit import audit_record
from accounts.models import License, User
from billing.money import format_money, money_exact
from payments import stripe_client
from payments.models import (
    Payment,
    SavedCard,
)
from payments.services.cards import account_get, default_card, license_ref
from payments.services.crediting import payment_settle
from payments.stripe_client import (
    CardDeclined,
    PaymentProviderError,
    ProviderUnavailable,
    cents_for,
    stripe_budget,
)
from portal.exceptions import ApplicationError
from portal.logfmt import logfmt

logger = logging.getLogger(__name__)


Status = Payment.Status


def purchase_amount_check(amount: Decimal) -> Decimal:
    """A purchase amount: whole cents within PAYMENT_MIN_AMOUNT..PAYMENT_MAX_AMOUNT."""
    low, high = Decimal(settings.PAYMENT_MIN_AMOUNT), Decimal(settings.PAYMENT_MAX_AMOUNT)
    try:
        amount = money_exact(amount)
        cents_for(amount)
    except (ValueError, ArithmeticError) as exc:
        raise ApplicationError(
            "Enter an amount in dollars and whole cents.", field="amount"
        ) from exc
    if amount < low or amount > high:
        raise ApplicationError(
            f"Enter an amount from {format_money(low, 2)} to {format_money(high, 2)}.",
            field="amount",
        )
    return amount


def payment_create(
    *, license: License, amount: Decimal, source: str, card: SavedCard, acting_user: User | None
) -> Payment:
    with transaction.atomic():
        payment = Payment.objects.create(
            license=license,
            amount=amount,
            amount_cents=cents_for(amount),
            currency=settings.STRIPE_CURRENCY,
            source=source,
            payment_method_id=card.payment_method_id,
            card_brand=card.brand,
            card_last4=card.last4,
            created_by=acting_user,
        )
        audit_record(
            actor=acting_user,
            license=license,
            action="payment.create",
            target=f"payment #{payment.pk}",
            changes={"amount": str(amount), "source": source, "card": card.label},
        )
    return payment


def payment_confirm(payment: Payment, *, off_session: bool) -> Payment:
    """Create and confirm the PaymentIntent of a stored payment, then settle what Stripe
    answered. Called once per payment row (its status is `created`)."""
    account = account_get(payment.license)
    try:
        intent = stripe_client.payment_intent_create(
            amount_cents=payment.amount_cents,
            customer_id=account.stripe_customer_id,
            payment_method_id=payment.payment_method_id,
            metadata={"license": license_ref(payment.license), "payment": str(payment.pk)},
            idempotency_key=f"portal-payment-{payment.pk}",
            off_session=off_session,
        )
    except CardDeclined as exc:
        if exc.intent and exc.intent.get("id"):
            payment_settle(intent=exc.intent, via="create")
        _payment_fail(payment.pk, exc.message)
        payment.refresh_from_db()
        return payment
    payment_settle(intent=intent, via="create")
    payment.refresh_from_db()
    return payment


def _payment_fail(payment_pk: int, message: str) -> None:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_pk)
        if payment.status in (Status.SUCCEEDED, Status.FAILED):
            return
        before = payment.status
        payment.status = Status.FAILED
        payment.failure_message = message[:500]
        payment.save(update_fields=["status", "failure_message", "updated_at"])
        audit_record(
            actor=None,
            license=payment.license,
            action="payment.status",
            target=f"payment #{payment.pk}",
            changes={"status": [before, Status.FAILED]},
            reason=message[:500],
        )


@stripe_budget()
def payment_start(
    *, license: License, acting_user: User, amount: Decimal, card: SavedCard | None = None
) -> Payment:
    """A customer buys credits with the saved card they chose (the default when none).

    Stripe's answer decides: a refusal (4xx) fails the payment at once (nothing was
    charged); no answer leaves it `created`, settled by its webhook if Stripe did charge
    (found by the payment number in the intent's metadata) — never asked again, so never
    charged twice; it counts against auto top-up's caps meanwhile."""
    amount = purchase_amount_check(amount)
    if card is None:
        card = default_card(license)
    if card is None:
        raise ApplicationError("Add a card first.", field="amount")
    if card.license_id != license.pk or card.removed_at is not None:
        raise ApplicationError("That card is not saved on this license.")
    payment = payment_create(
        license=license,
        amount=amount,
        source=Payment.Source.PURCHASE,
        card=card,
        acting_user=acting_user,
    )
    try:
        return payment_confirm(payment, off_session=False)
    except ProviderUnavailable as exc:
        # No answer: the intent may exist. The payment stays `created`, its webhook (or
        # the next look from the payment page) settles it if Stripe did charge.
        payment.failure_message = exc.message[:500]
        payment.save(update_fields=["failure_message", "updated_at"])
        return payment
    except PaymentProviderError as exc:
        _payment_fail(payment.pk, exc.message)
        payment.refresh_from_db()
        return payment


MISSING_INTENT = "The payment service has no record of this payment, so nothing was charged."


def payment_intent_missing(*, payment: Payment, message: str = MISSING_INTENT) -> None:
    """Stripe answered that it does not know the payment's intent (404): a definitive
    answer, so a payment not yet credited fails instead of waiting for ever."""
    logger.warning(logfmt("payment intent missing", payment=payment.pk, intent=payment.intent_id))
    _payment_fail(payment.pk, message)


@stripe_budget()
def payment_refresh(*, payment: Payment) -> Payment:
    """The browser's return (after 3-D Secure, or the payment page looking again): ask
    Stripe for the intent and settle it. A payment without an intent stays as it is; one
    whose intent Stripe does not know fails."""
    if payment.intent_id and payment.status != Status.SUCCEEDED:
        try:
            intent = stripe_client.payment_intent_get(payment.intent_id)
        except PaymentProviderError as exc:
            logger.warning("payment %s refresh: %s", payment.pk, exc.message)
            if exc.missing:
                payment_intent_missing(payment=payment)
        else:
            payment_settle(intent=intent, via="return")
        payment.refresh_from_db()
    return payment
