"""Card payments: saving cards, paying, crediting exactly once, refunds, disputes.

Crediting (`payment_settle`) is the one place a payment becomes money: it locks the
payment row, checks the intent against what the portal stored when it created it (license,
amount, currency), and records one purchase with external id "pi:<intent id>"
(CARD_PURCHASE_PREFIX) through
billing.purchases.services.purchase_record. Every path that learns an intent's state (the webhook,
the browser's return, the server's own create call, the auto top-up task) goes through it,
in any order and any number of times; the payment row lock and the ledger's unique
(license, external_id) make the second arrival a no-op.

Stripe is never called inside a transaction, nor with any row locked: rows are claimed
or stored first and committed, Stripe is called, and its answer recorded in a transaction
of its own (payments/stripe_client.py: each call ends by a wall-clock deadline).
"""

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from billing.events.services import money_event_record, money_text
from billing.ledger.posting import exact_amount
from billing.models import LedgerEntry
from billing.money import format_money, money_exact
from billing.purchases.refunds import purchase_refund_record
from billing.purchases.services import purchase_record
from billing.refunds.services import RefundResult, refundable_amount
from payments import stripe_client
from payments.event_types import DISPUTE_UPDATED
from payments.models import (
    CARD_PURCHASE_PREFIX,
    Dispute,
    Payment,
    PaymentAccount,
    PaymentRefund,
    SavedCard,
)
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


def purchase_external_id(intent_id: str) -> str:
    return f"{CARD_PURCHASE_PREFIX}{intent_id}"


def _license_ref(license: License) -> str:
    return str(license.public_id)


# --- the Stripe customer and saved cards ---------------------------------------------------


def account_get(license: License) -> PaymentAccount:
    account, _ = PaymentAccount.objects.get_or_create(
        license=license,
        defaults={
            "auto_topup_monthly_count": settings.AUTO_TOPUP_MONTHLY_COUNT,
            "auto_topup_monthly_amount": Decimal(settings.AUTO_TOPUP_MONTHLY_AMOUNT),
        },
    )
    return account


def _customer_ensure(license: License, acting_user: User) -> str:
    account = account_get(license)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer_id = stripe_client.customer_create(
        email=license.contact_email or acting_user.email,
        name=license.name,
        license_ref=_license_ref(license),
    )
    with transaction.atomic():
        account = PaymentAccount.objects.select_for_update().get(pk=account.pk)
        if not account.stripe_customer_id:
            account.stripe_customer_id = customer_id
            account.save(update_fields=["stripe_customer_id", "updated_at"])
            audit_record(
                actor=acting_user,
                license=license,
                action="payments.customer",
                target=f"stripe customer {customer_id}",
            )
    return account.stripe_customer_id


@stripe_budget()
def card_setup_start(*, license: License, acting_user: User) -> dict[str, str]:
    """A SetupIntent for the browser to confirm with Stripe.js (confirmCardSetup)."""
    customer_id = _customer_ensure(license, acting_user)
    intent = stripe_client.setup_intent_create(
        customer_id=customer_id, license_ref=_license_ref(license)
    )
    return {"id": str(intent["id"]), "client_secret": str(intent["client_secret"])}


@stripe_budget()
def card_save(*, license: License, acting_user: User, setup_intent_id: str) -> SavedCard:
    """Keep the card a confirmed SetupIntent saved, once it is this license's customer's."""
    account = account_get(license)
    try:
        setup = stripe_client.setup_intent_get(setup_intent_id)
    except PaymentProviderError as exc:
        raise ApplicationError(exc.message) from exc
    if (
        not account.stripe_customer_id
        or setup.get("customer") != account.stripe_customer_id
        or setup.get("status") != "succeeded"
        or not setup.get("payment_method")
    ):
        raise ApplicationError("The card could not be saved; please enter it again.")
    method_id = setup["payment_method"]
    if isinstance(method_id, dict):
        method_id = method_id["id"]
    method = stripe_client.payment_method_get(method_id)
    if not method.get("customer"):
        method = stripe_client.payment_method_attach(
            payment_method_id=method_id, customer_id=account.stripe_customer_id
        )
    elif method["customer"] != account.stripe_customer_id:
        raise ApplicationError("The card could not be saved; please enter it again.")
    card = method.get("card") or {}
    with transaction.atomic():
        PaymentAccount.objects.select_for_update().get(pk=account.pk)
        saved, created = SavedCard.objects.get_or_create(
            payment_method_id=method_id,
            defaults={
                "license": license,
                "brand": str(card.get("brand") or ""),
                "last4": str(card.get("last4") or ""),
                "exp_month": int(card.get("exp_month") or 0),
                "exp_year": int(card.get("exp_year") or 0),
            },
        )
        if saved.license_id != license.pk:
            raise ApplicationError("The card could not be saved; please enter it again.")
        if created:
            has_default = (
                SavedCard.objects.for_license(license)
                .filter(is_default=True, removed_at__isnull=True)
                .exists()
            )
            if not has_default:
                saved.is_default = True
                saved.save(update_fields=["is_default", "updated_at"])
            audit_record(
                actor=acting_user,
                license=license,
                action="payments.card_add",
                target=saved.label,
                changes={"payment_method": method_id, "default": saved.is_default},
            )
    return saved


@transaction.atomic
def card_default_set(*, license: License, acting_user: User, card: SavedCard) -> SavedCard:
    account_get(license)
    PaymentAccount.objects.select_for_update().get(license=license)
    if card.license_id != license.pk or card.removed_at is not None:
        raise ApplicationError("That card is not saved on this license.")
    SavedCard.objects.for_license(license).filter(is_default=True).update(is_default=False)
    card.is_default = True
    card.save(update_fields=["is_default", "updated_at"])
    audit_record(
        actor=acting_user, license=license, action="payments.card_default", target=card.label
    )
    return card


@stripe_budget()
def card_remove(*, license: License, acting_user: User, card: SavedCard) -> None:
    """Detach the card in Stripe, then forget it here; another card becomes the default."""
    if card.license_id != license.pk or card.removed_at is not None:
        raise ApplicationError("That card is not saved on this license.")
    try:
        stripe_client.payment_method_detach(card.payment_method_id)
    except PaymentProviderError as exc:
        raise ApplicationError(f"The card could not be removed: {exc.message}") from exc
    with transaction.atomic():
        PaymentAccount.objects.select_for_update().get(license=license)
        was_default = card.is_default
        card.removed_at = timezone.now()
        card.is_default = False
        card.save(update_fields=["removed_at", "is_default", "updated_at"])
        if was_default:
            other = (
                SavedCard.objects.for_license(license)
                .filter(removed_at__isnull=True)
                .order_by("-created_at")
                .first()
            )
            if other is not None:
                other.is_default = True
                other.save(update_fields=["is_default", "updated_at"])
        audit_record(
            actor=acting_user, license=license, action="payments.card_remove", target=card.label
        )


def default_card(license: License) -> SavedCard | None:
    return (
        SavedCard.objects.for_license(license)
        .filter(is_default=True, removed_at__isnull=True)
        .first()
    )


# --- paying ---------------------------------------------------------------------------------


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


def _payment_create(
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


def _payment_confirm(payment: Payment, *, off_session: bool) -> Payment:
    """Create and confirm the PaymentIntent of a stored payment, then settle what Stripe
    answered. Called once per payment row (its status is `created`)."""
    account = account_get(payment.license)
    try:
        intent = stripe_client.payment_intent_create(
            amount_cents=payment.amount_cents,
            customer_id=account.stripe_customer_id,
            payment_method_id=payment.payment_method_id,
            metadata={"license": _license_ref(payment.license), "payment": str(payment.pk)},
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
def payment_start(*, license: License, acting_user: User, amount: Decimal) -> Payment:
    """A customer buys credits with the license's default saved card.

    Stripe's answer decides: a refusal (4xx) fails the payment at once (nothing was
    charged); no answer leaves it `created`, settled by its webhook if Stripe did charge
    (found by the payment number in the intent's metadata) — never asked again, so never
    charged twice; it counts against auto top-up's caps meanwhile."""
    amount = purchase_amount_check(amount)
    card = default_card(license)
    if card is None:
        raise ApplicationError("Add a card first.", field="amount")
    payment = _payment_create(
        license=license,
        amount=amount,
        source=Payment.Source.PURCHASE,
        card=card,
        acting_user=acting_user,
    )
    try:
        return _payment_confirm(payment, off_session=False)
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


@dataclass(frozen=True)
class SettleOutcome:
    payment: Payment | None
    credited: bool
    message: str
    needs_attention: bool = False


def _attention(message: str, intent_id: str, payment: Payment | None = None) -> SettleOutcome:
    logger.warning(logfmt("payment refused", intent=intent_id, reason=message))
    return SettleOutcome(payment, False, message, needs_attention=True)


def _payment_for_intent(intent: dict[str, Any]) -> tuple[Payment | None, str]:
    """The portal's payment row for an intent, locked; or None and why not.

    An intent the portal created has its row stored before Stripe was called; if Stripe's
    answer (its id) was lost, the row is found by the payment number in the intent's
    metadata, once, and only if it has no intent yet."""
    intent_id = str(intent.get("id") or "")
    payment = Payment.objects.select_for_update().filter(intent_id=intent_id).first()
    if payment is not None:
        return payment, ""
    reference = str((intent.get("metadata") or {}).get("payment") or "")
    if reference.isdigit():
        payment = (
            Payment.objects.select_for_update()
            .filter(pk=int(reference), intent_id__isnull=True)
            .first()
        )
        if payment is not None and _intent_matches(payment, intent) == "":
            payment.intent_id = intent_id
            payment.save(update_fields=["intent_id", "updated_at"])
            return payment, ""
    return None, "an intent the portal did not create"


def _intent_matches(payment: Payment, intent: dict[str, Any]) -> str:
    metadata = intent.get("metadata") or {}
    if str(metadata.get("license") or "") != _license_ref(payment.license):
        return "an intent of another license"
    if int(intent.get("amount") or 0) != payment.amount_cents:
        return f"an amount changed from {payment.amount_cents} to {intent.get('amount')} cents"
    if str(intent.get("currency") or "").lower() != payment.currency:
        return f"a currency changed to {intent.get('currency')}"
    return ""


def _next_receipt_number(payment: Payment) -> str:
    return f"R{timezone.now():%Y}-{payment.pk:07d}"


def payment_settle(*, intent: dict[str, Any], via: str) -> SettleOutcome:
    """Bring a payment in line with its intent, crediting it once if it succeeded.

    `intent` is Stripe's PaymentIntent (from the API, never only from a browser). Returns
    what happened; an intent the portal did not create for that license, or whose amount
    or currency changed, credits nothing and `needs_attention`."""
    intent_id = str(intent.get("id") or "")
    with transaction.atomic():
        payment, why = _payment_for_intent(intent)
        if payment is None:
            return _attention(why, intent_id)
        mismatch = _intent_matches(payment, intent)
        if mismatch:
            return _attention(mismatch, intent_id, payment)
        status = str(intent.get("status") or "")
        before = payment.status
        credited = False
        if payment.status == Status.SUCCEEDED:
            # Terminal: a late or replayed event of an earlier state changes nothing.
            return SettleOutcome(payment, False, "already credited")
        if status == "succeeded":
            cents = stripe_client.captured_cents(intent)
            if cents <= 0 or cents > payment.amount_cents:
                return _attention(f"a captured amount of {cents} cents", intent_id, payment)
            amount = stripe_client.money_from_cents(cents)
            description = (
                "Auto top-up" if payment.source == Payment.Source.AUTO_TOPUP else "Card payment"
            )
            if payment.card_last4:
                description += f" ({payment.card_label})"
            result = purchase_record(
                license=payment.license,
                amount=amount,
                external_id=purchase_external_id(intent_id),
                description=description,
            )
            payment.ledger_entry = result.entry
            payment.captured_cents = cents
            payment.status = Status.SUCCEEDED
            payment.failure_message = ""
            payment.client_secret = ""
            payment.credited_at = timezone.now()
            payment.receipt_number = _next_receipt_number(payment)
            credited = result.created
        elif status == "requires_action":
            payment.status = Status.REQUIRES_ACTION
            payment.client_secret = str(intent.get("client_secret") or "")
        elif status in ("processing", "requires_confirmation", "requires_capture"):
            payment.status = Status.PROCESSING
        elif status in ("requires_payment_method", "canceled"):
            error = intent.get("last_payment_error") or {}
            payment.status = Status.FAILED
            payment.client_secret = ""
            payment.failure_message = str(error.get("message") or "The payment was not completed.")[
                :500
            ]
        payment.save()
        if payment.status != before:
            audit_record(
                actor=None,
                license=payment.license,
                action="payment.status",
                target=f"payment #{payment.pk}",
                changes={
                    "status": [before, payment.status],
                    "intent": intent_id,
                    "via": via,
                    **({"ledger_entry": payment.ledger_entry_id} if credited else {}),
                },
            )
    if credited:
        logger.info(
            logfmt(
                "payment credited",
                payment=payment.pk,
                intent=intent_id,
                amount=payment.amount,
                via=via,
            )
        )
    return SettleOutcome(payment, credited, "credited" if credited else payment.status)


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


# --- refunds ----------------------------------------------------------------------------


def payment_refund_issue(
    *,
    acting_user: User,
    purchase: LedgerEntry,
    amount: Decimal,
    reason: str,
    idempotency_key: str,
) -> RefundResult:
    """The billing team refunds (part of) a card purchase (its admin page, payments.admin):
    through Stripe first, then one ledger refund ("re:<refund id>", so Stripe's own
    charge.refunded event adds nothing), recorded by billing.purchases.refunds.

    The form's idempotency key is stored before Stripe is called, under the payment's row
    lock, and committed: a double submit refunds once, and two refunds of one payment
    together never pass what is left of the purchase (a request on its way to Stripe counts
    as refunded). Stripe is called with no lock held and no transaction open; its refund is
    then recorded in a transaction of its own. A request Stripe refused, or did not answer,
    is withdrawn: a refund Stripe did make arrives with its charge.refunded event and is
    recorded once ("re:<refund id>")."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the refund is issued.", field="reason")
    amount = exact_amount(amount)
    if amount <= 0:
        raise ApplicationError("A refund must be a positive amount.", field="amount")
    if purchase.kind != LedgerEntry.Kind.PURCHASE:
        raise ApplicationError("Only a purchase can be refunded to the card.")
    payment = Payment.objects.filter(ledger_entry=purchase).select_related("license").first()
    if payment is None or payment.intent_id is None:
        raise ApplicationError("This purchase has no card payment to refund.")
    try:
        cents = cents_for(amount)
    except ValueError as exc:
        raise ApplicationError("Card refunds are in whole cents.", field="amount") from exc
    license = payment.license
    with transaction.atomic():
        Payment.objects.select_for_update().get(pk=payment.pk)
        existing = PaymentRefund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.ledger_entry is not None:
                return RefundResult(existing.ledger_entry, False)
            raise ApplicationError("This refund was already sent to Stripe; reload the entry.")
        remaining = refundable_amount(purchase) - sum(
            (
                r.amount
                for r in PaymentRefund.objects.for_license(license).filter(
                    payment=payment, ledger_entry__isnull=True
                )
            ),
            Decimal("0"),
        )
        if amount > remaining:
            raise ApplicationError(
                f"At most ${remaining} of this purchase is still refundable.", field="amount"
            )
        try:
            request = PaymentRefund.objects.create(
                license=license, payment=payment, idempotency_key=idempotency_key, amount=amount
            )
        except IntegrityError as exc:
            raise ApplicationError("This refund is already being issued.") from exc
    try:
        with stripe_budget():
            refund = stripe_client.refund_create(
                intent_id=payment.intent_id,
                amount_cents=cents,
                idempotency_key=f"portal-refund-{idempotency_key}",
                metadata={"license": _license_ref(license), "payment": str(payment.pk)},
            )
    except PaymentProviderError as exc:
        PaymentRefund.objects.filter(pk=request.pk, ledger_entry__isnull=True).delete()
        raise ApplicationError(f"Stripe did not refund: {exc.message}") from exc
    with transaction.atomic():
        request = PaymentRefund.objects.select_for_update().get(pk=request.pk)
        request.refund_id = str(refund["id"])
        result = purchase_refund_record(
            license=license,
            purchase=purchase,
            amount=stripe_client.money_from_cents(int(refund.get("amount") or cents)),
            external_id=f"re:{refund['id']}",
            reason=reason,
            acting_user=acting_user,
        )
        request.ledger_entry = result.entry
        request.save(update_fields=["refund_id", "ledger_entry", "updated_at"])
    return result


def refunds_from_stripe_record(*, charge: dict[str, Any], intent_id: str) -> list[RefundResult]:
    """charge.refunded: record each succeeded refund of the charge once ("re:<id>"),
    whether the billing team issued it here or someone did in Stripe's dashboard."""
    payment = Payment.objects.filter(intent_id=intent_id).select_related("license").first()
    if payment is None or payment.ledger_entry is None:
        raise ApplicationError(f"refund of {intent_id}: not a payment the portal credited")
    results = []
    refunds = (charge.get("refunds") or {}).get("data") or []
    for refund in refunds:
        if refund.get("status") not in ("succeeded", "pending"):
            continue
        results.append(
            purchase_refund_record(
                license=payment.license,
                purchase=payment.ledger_entry,
                amount=stripe_client.money_from_cents(int(refund["amount"])),
                external_id=f"re:{refund['id']}",
                reason=str((refund.get("metadata") or {}).get("reason") or "Refunded in Stripe"),
            )
        )
    return results


# --- disputes ---------------------------------------------------------------------------


def dispute_record(*, dispute: dict[str, Any], event_type: str) -> tuple[Dispute, bool]:
    """charge.dispute.*: keep the dispute and its status; a lost dispute takes the disputed
    money back off the balance once ("dp:<dispute id>"). Returns (dispute, opened now)."""
    intent_id = str(dispute.get("payment_intent") or "")
    payment = Payment.objects.filter(intent_id=intent_id).select_related("license").first()
    if payment is None or payment.ledger_entry is None:
        raise ApplicationError(
            f"dispute on {intent_id or dispute.get('charge')}: not a payment the portal credited"
        )
    with transaction.atomic():
        row, created = Dispute.objects.select_for_update().get_or_create(
            dispute_id=str(dispute["id"]),
            defaults={
                "license": payment.license,
                "payment": payment,
                "amount_cents": int(dispute.get("amount") or 0),
                "reason": str(dispute.get("reason") or ""),
                "status": str(dispute.get("status") or ""),
            },
        )
        before = "" if created else row.status
        row.status = str(dispute.get("status") or row.status)
        if event_type == "charge.dispute.closed" and row.closed_at is None:
            row.closed_at = timezone.now()
        row.save()
        if created or before != row.status:
            audit_record(
                actor=None,
                license=payment.license,
                action="payment.dispute",
                target=f"payment #{payment.pk}",
                changes={"dispute": row.dispute_id, "status": [before, row.status]},
                reason=row.reason,
            )
            money_event_record(
                license=payment.license,
                event_type=DISPUTE_UPDATED,
                data={
                    "dispute_id": row.dispute_id,
                    "payment_id": payment.pk,
                    "transaction_id": payment.ledger_entry.pk,
                    "amount": money_text(stripe_client.money_from_cents(row.amount_cents)),
                    "reason": row.reason,
                    "status": row.status,
                    "previous_status": before or None,
                },
            )
        lost = min(
            stripe_client.money_from_cents(row.amount_cents),
            refundable_amount(payment.ledger_entry),
        )
        if row.status == "lost" and lost > 0:
            purchase_refund_record(
                license=payment.license,
                purchase=payment.ledger_entry,
                amount=lost,
                external_id=f"dp:{row.dispute_id}",
                reason=f"Dispute {row.dispute_id} lost ({row.reason or 'no reason given'})",
            )
    return row, created
