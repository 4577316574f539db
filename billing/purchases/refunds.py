"""Refunds of a purchase: money back to the customer's card, through the provider that took
it first (billing.hooks), then one negative ledger entry per provider refund."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from billing.aftermath import balance_change_follow, money_announce, money_log
from billing.hooks import purchase_refunder_for
from billing.ledger.posting import EntryDraft, exact_amount, lock_balance, post_entry
from billing.models import LedgerEntry
from billing.refunds.services import RefundResult, refundable_amount
from billing.signals import (
    REFUND_ISSUED,
)
from portal.exceptions import ApplicationError

Kind = LedgerEntry.Kind


def purchase_refund_issue(
    *,
    acting_user: User,
    license: License,
    purchase: LedgerEntry,
    amount: Decimal,
    reason: str,
    idempotency_key: str,
) -> RefundResult:
    """Refund part or all of a purchase to the customer: through the payment provider that
    took the money first (the refunder its app registered, billing.hooks), which then
    records the ledger refund once (`purchase_refund_record`). Not atomic on purpose: the
    provider's call must not run inside a transaction holding the balance lock."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the refund is issued.", field="reason")
    amount = exact_amount(amount)
    if amount <= 0:
        raise ApplicationError("A refund must be a positive amount.", field="amount")
    if purchase.license_id != license.pk or purchase.kind != Kind.PURCHASE:
        raise ApplicationError("Only a purchase on this license can be refunded to the card.")
    refunder = purchase_refunder_for(purchase.external_id)
    if refunder is None:
        raise ApplicationError(
            "This purchase was not paid through the portal, so the money goes back the way "
            "it came (outside the portal); credit or correct the balance here if needed."
        )
    remaining = refundable_amount(purchase)
    if amount > remaining:
        raise ApplicationError(
            f"At most ${remaining} of this purchase is still refundable.", field="amount"
        )
    result: RefundResult = refunder(
        acting_user=acting_user,
        purchase=purchase,
        amount=amount,
        reason=reason,
        idempotency_key=idempotency_key,
    )
    return result


@transaction.atomic
def purchase_refund_record(
    *,
    license: License,
    purchase: LedgerEntry,
    amount: Decimal,
    external_id: str,
    reason: str,
    acting_user: User | None = None,
) -> RefundResult:
    """Record money returned to the customer's card for a purchase: one negative refund
    entry per provider refund (`external_id`, e.g. "re:<refund id>"), so the same refund
    reported twice (the billing team's form, then the provider's event) records once.

    The refunds of a purchase never exceed it: decided here under the balance lock, and
    refused by the database's refund guard (migration billing.0009) whatever the path.
    """
    amount = exact_amount(amount)
    if amount <= 0:
        raise ApplicationError("A refund must be a positive amount.", field="amount")
    if purchase.license_id != license.pk or purchase.kind != Kind.PURCHASE:
        raise ApplicationError("Only a purchase on this license can be refunded to the card.")
    balance = lock_balance(license)
    existing = LedgerEntry.objects.for_license(license).filter(external_id=external_id).first()
    if existing is not None:
        if existing.refund_of_id != purchase.pk or existing.amount != -amount:
            raise ApplicationError(f"Refund {external_id} was already recorded differently.")
        return RefundResult(existing, False)
    remaining = refundable_amount(purchase)
    if amount > remaining:
        raise ApplicationError(
            f"At most ${remaining} of this purchase is still refundable.", field="amount"
        )
    draft = EntryDraft(
        kind=Kind.REFUND,
        amount=-amount,
        occurred_at=timezone.now(),
        external_id=external_id,
        description=f"Refund of purchase #{purchase.pk} to the card",
        refund_of_id=purchase.pk,
        reason=(reason or "").strip() or "Refunded to the card",
        created_by_id=acting_user.pk if acting_user else None,
    )
    posted, entry = post_entry(license=license, balance=balance, draft=draft)
    # Audited whoever asked: a person (acting_user) or the provider (a refund made there).
    audit_record(
        actor=acting_user,
        license=license,
        action="refund.purchase",
        target=f"ledger entry #{entry.pk}",
        changes={"amount": str(-amount), "refund_of": purchase.pk, "external_id": external_id},
        reason=draft.reason,
    )
    money_announce(REFUND_ISSUED, license, entry, balance_after=posted.balance_after)
    money_log(
        "money refund",
        license=license.key,
        entry=entry.pk,
        amount=-amount,
        refund_of=purchase.pk,
        balance=posted.balance_after,
        by=acting_user.pk if acting_user else None,
    )
    balance_change_follow(license, balance, latest_at=draft.occurred_at, lowered=True)
    return RefundResult(entry, True)
