"""Auto top-up: "when my balance falls below $X, add $Y", with guardrails.

The decision is a consumer of billing's money events (payments.receivers): after the
posting committed, each event that moved the balance is judged once, in order, from the
balance after it, with the license's PaymentAccount row locked in the consumer's own
transaction (never in the posting's), so two postings crossing the line start one top-up.
Whether the balance crossed the line is billing's one rule (billing.events.crossing). The
decision only writes a payment row and hands the charge to a task after its commit: Stripe
is never called inside a transaction that decides.

Guardrails, all decided under that lock:
- one top-up per crossing: the rule disarms when it starts one, and re-arms only once the
  balance is back at or above the threshold;
- at most `auto_topup_monthly_count` top-ups and `auto_topup_monthly_amount` dollars per
  calendar month (the license's timezone); failed attempts do not count, while those whose
  outcome is not known yet (`created`, `processing`: Stripe did not answer) do;
- after 2 consecutive failures the rule switches itself off and says why;
- an email on every top-up and every failure (payments.emails).
"""

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from accounts.audit import audit_record
from accounts.models import License, User
from billing.events.crossing import Line, crossing_step
from billing.events.services import money_event_record, money_text
from billing.money import quantize_money
from payments import emails
from payments.event_types import AUTO_TOPUP_FAILED
from payments.models import Payment, PaymentAccount
from payments.services.cards import account_get, default_card
from payments.services.paying import (
    _payment_fail,
    payment_confirm,
    payment_create,
    purchase_amount_check,
)
from payments.stripe_client import PaymentProviderError, ProviderUnavailable, payments_enabled
from portal.exceptions import ApplicationError
from portal.logfmt import logfmt

logger = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 2


def auto_topup_month_used(license: License) -> tuple[int, Decimal]:
    """Top-ups started this calendar month (not failed): how many, and their dollars."""
    rows = (
        Payment.objects.for_license(license)
        .filter(
            source=Payment.Source.AUTO_TOPUP,
            created_at__gte=license.local_start(license.local_month()),
        )
        .exclude(status=Payment.Status.FAILED)
    )
    total = rows.aggregate(total=Sum("amount"))["total"] or Decimal("0")
    return rows.count(), quantize_money(total)


def _announce_failed(
    license: License, *, message: str, switched_off: bool, payment: Payment | None = None
) -> None:
    """auto_topup.failed, a money event written in the deciding transaction (webhooks)."""
    money_event_record(
        license=license,
        event_type=AUTO_TOPUP_FAILED,
        data={
            "payment_id": payment.pk if payment is not None else None,
            "amount": money_text(payment.amount) if payment is not None else None,
            "message": message,
            "auto_topup_switched_off": switched_off,
        },
    )


def _switch_off(account: PaymentAccount, reason: str) -> None:
    account.auto_topup_enabled = False
    account.auto_topup_disabled_reason = reason[:300]
    account.save(update_fields=["auto_topup_enabled", "auto_topup_disabled_reason", "updated_at"])
    audit_record(
        actor=None,
        license=account.license,
        action="auto_topup.switched_off",
        target=f"license {account.license.key}",
        reason=reason,
    )


@dataclass(frozen=True)
class Notice:
    """An email owed about a top-up that was not started: kind "capped" or "failed"."""

    kind: str
    message: str
    switched_off: bool = False


@dataclass(frozen=True)
class Decision:
    payment: Payment | None = None
    notice: Notice | None = None


def auto_topup_decide(*, license: License, balance: Decimal) -> Decision:
    """Decide whether the balance after a money event (`balance`) starts a top-up, with
    the license's PaymentAccount row locked in the current transaction. The caller hands
    the decision's payment (status `created`) and notice to tasks after commit."""
    account = (
        PaymentAccount.objects.select_for_update()
        .select_related("license")
        .filter(license=license, auto_topup_enabled=True)
        .first()
    )
    if account is None:
        return Decision()
    # Armed is level 0 of the one line: the top-up crosses it once, re-armed at or above it.
    step = crossing_step(
        level=0 if account.auto_topup_armed else 1,
        balance=balance,
        lines=(Line(account.auto_topup_threshold),),
    )
    if step.crossed is not None and not payments_enabled():
        return Decision()
    armed = step.level == 0
    if armed != account.auto_topup_armed:
        account.auto_topup_armed = armed
        account.save(update_fields=["auto_topup_armed", "updated_at"])
    if step.crossed is None:
        return Decision()
    count, dollars = auto_topup_month_used(license)
    amount = account.auto_topup_amount
    if count >= account.auto_topup_monthly_count:
        why = f"the limit of {account.auto_topup_monthly_count} top-ups this month was reached"
    elif dollars + amount > account.auto_topup_monthly_amount:
        why = f"the monthly cap of ${account.auto_topup_monthly_amount} would be passed"
    else:
        why = ""
    if why:
        audit_record(actor=None, license=license, action="auto_topup.capped", reason=why)
        logger.info(logfmt("auto top-up capped", license=license.key, reason=why))
        return Decision(notice=Notice("capped", why))
    card = default_card(license)
    if card is None:
        _switch_off(account, "there is no saved card to charge")
        _announce_failed(license, message="There is no saved card to charge.", switched_off=True)
        return Decision(notice=Notice("failed", "There is no saved card to charge.", True))
    payment = payment_create(
        license=license,
        amount=amount,
        source=Payment.Source.AUTO_TOPUP,
        card=card,
        acting_user=None,
    )
    logger.info(logfmt("auto top-up owed", license=license.key, payment=payment.pk, amount=amount))
    return Decision(payment=payment)


def auto_topup_charge(*, payment_id: int) -> Payment:
    """Charge an owed top-up (once: a payment that left `created` is not charged again),
    then count the failure or reset the count, and send the email."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("license").get(pk=payment_id)
        if payment.status != Payment.Status.CREATED or payment.intent_id:
            return payment
        # Claim it: a second delivery of the task finds it processing and stops.
        payment.status = Payment.Status.PROCESSING
        payment.save(update_fields=["status", "updated_at"])
    try:
        payment = payment_confirm(payment, off_session=True)
    except ProviderUnavailable as exc:
        # Stripe did not answer: the intent may exist; its webhook settles it (found by the
        # payment number in its metadata). Nothing is retried here, so nothing is charged twice.
        # Meanwhile the payment counts against the month's caps (auto_topup_month_used).
        logger.warning(logfmt("auto top-up unanswered", payment=payment.pk, error=exc.message))
        return payment
    except PaymentProviderError as exc:
        # Stripe refused (a customer it no longer knows, say): nothing was charged. A failure
        # like a declined card, so it counts towards switching the rule off.
        _payment_fail(payment.pk, exc.message)
        payment.refresh_from_db()
    license = payment.license
    with transaction.atomic():
        account = PaymentAccount.objects.select_for_update().get(license=license)
        if payment.status == Payment.Status.SUCCEEDED:
            account.auto_topup_failures = 0
            account.save(update_fields=["auto_topup_failures", "updated_at"])
            transaction.on_commit(lambda: emails.auto_topup_succeeded_send(payment_id=payment.pk))
        elif payment.status == Payment.Status.FAILED:
            account.auto_topup_failures += 1
            switched_off = account.auto_topup_failures >= MAX_CONSECUTIVE_FAILURES
            account.save(update_fields=["auto_topup_failures", "updated_at"])
            if switched_off:
                _switch_off(
                    account,
                    f"{account.auto_topup_failures} top-ups in a row failed "
                    f"(last: {payment.failure_message})",
                )
            message = payment.failure_message
            _announce_failed(license, message=message, switched_off=switched_off, payment=payment)
            transaction.on_commit(
                lambda: emails.auto_topup_failed_send(
                    license_id=license.pk, message=message, switched_off=switched_off
                )
            )
    return payment


@transaction.atomic
def auto_topup_settings_update(
    *,
    license: License,
    acting_user: User,
    enabled: bool,
    threshold: Decimal,
    amount: Decimal,
    monthly_count: int,
    monthly_amount: Decimal,
) -> PaymentAccount:
    """An owner sets the rule. Switching it on needs a saved card and re-arms it, and
    clears the failure count and the reason it was switched off."""
    account_get(license)
    account = PaymentAccount.objects.select_for_update().get(license=license)
    if enabled and default_card(license) is None:
        raise ApplicationError("Save a card before switching auto top-up on.", field="enabled")
    amount = purchase_amount_check(amount)
    if monthly_amount < amount:
        raise ApplicationError(
            "The monthly cap must allow at least one top-up.", field="monthly_amount"
        )
    before = {
        "enabled": account.auto_topup_enabled,
        "threshold": str(account.auto_topup_threshold),
        "amount": str(account.auto_topup_amount),
        "monthly_count": account.auto_topup_monthly_count,
        "monthly_amount": str(account.auto_topup_monthly_amount),
    }
    if enabled and not account.auto_topup_enabled:
        account.auto_topup_armed = True
        account.auto_topup_failures = 0
        account.auto_topup_disabled_reason = ""
    account.auto_topup_enabled = enabled
    account.auto_topup_threshold = quantize_money(threshold)
    account.auto_topup_amount = amount
    account.auto_topup_monthly_count = monthly_count
    account.auto_topup_monthly_amount = quantize_money(monthly_amount)
    account.save()
    after = {
        "enabled": account.auto_topup_enabled,
        "threshold": str(account.auto_topup_threshold),
        "amount": str(account.auto_topup_amount),
        "monthly_count": account.auto_topup_monthly_count,
        "monthly_amount": str(account.auto_topup_monthly_amount),
    }
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changes:
        audit_record(
            actor=acting_user,
            license=license,
            action="auto_topup.settings",
            target=f"license {license.key}",
            changes=changes,
        )
    return account
