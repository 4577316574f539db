"""Refunds of a purchase: money back to the customer's card. The payment provider's app
takes the money back first (payments.services.refunds.payment_refund_issue, from its admin page
or the provider's own event), then records it here: one negative ledger entry per
provider refund. Billing never calls the provider."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from billing.aftermath import entry_moved, money_log
from billing.documents.issuing import credit_note_issue
from billing.ledger.posting import EntryDraft, exact_amount, lock_balance, post_entry
from billing.models import LedgerEntry
from billing.refunds.services import RefundResult, refundable_amount
from portal.exceptions import ApplicationError

Kind = LedgerEntry.Kind


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
    credit_note_issue(refund=entry, purchase=purchase)
    # Audited whoever asked: a person (acting_user) or the provider (a refund made there).
    audit_record(
        actor=acting_user,
        license=license,
        action="refund.purchase",
        target=f"ledger entry #{entry.pk}",
        changes={"amount": str(-amount), "refund_of": purchase.pk, "external_id": external_id},
        reason=draft.reason,
    )
    money_log(
        "money refund",
        license=license.key,
        entry=entry.pk,
        amount=-amount,
        refund_of=purchase.pk,
        balance=posted.balance_after,
        by=acting_user.pk if acting_user else None,
    )
    entry_moved(license, balance, entry)  # purchase.refunded, naming the purchase
    return RefundResult(entry, True)
