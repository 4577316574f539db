"""Purchases of credit: recorded once per payment reference, whoever reports them (the
billing team by hand, a payment provider's webhook)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from billing.aftermath import entry_moved, money_log
from billing.credits.expiry import grant_expiry_check
from billing.credits.limits import credit_refuse_unapproved
from billing.documents.issuing import invoice_issue
from billing.events.services import grant_data
from billing.ledger.posting import EntryDraft, exact_amount, lock_balance, post_entry
from billing.models import CreditApproval, GrantKind, LedgerEntry
from portal.exceptions import ApplicationError

Kind = LedgerEntry.Kind


@dataclass(frozen=True)
class PurchaseResult:
    entry: LedgerEntry
    created: bool


@transaction.atomic
def purchase_record(
    *,
    license: License,
    amount: Decimal,
    external_id: str,
    description: str = "",
    occurred_at: datetime | None = None,
    acting_user: User | None = None,
    approval: CreditApproval | None = None,
    expires_at: datetime | None = None,
    reason: str = "",
    payment_method: str = "",
) -> PurchaseResult:
    """Record a purchase of credits: a paid grant, which expires at `expires_at` (None:
    never, as paid credit does unless a date is given). The same external id twice records
    once. `reason`: why a person recorded it by hand, kept on the entry and audited.

    A purchase a person records (`acting_user`) above the approval limit needs its
    `approval`; one a payment provider reports (no acting user) was paid, and is not limited.

    Each purchase gets its invoice here, in the same transaction (billing.documents):
    `payment_method` is what the invoice says paid it.
    """
    amount = exact_amount(amount)
    if amount <= 0:
        raise ApplicationError("A purchase must be a positive amount.", field="amount")
    external_id = (external_id or "").strip()
    if not external_id:
        raise ApplicationError("A purchase needs a payment reference.", field="external_id")
    grant_expiry_check(expires_at)
    if acting_user is not None:
        credit_refuse_unapproved(
            acting_user=acting_user,
            license=license,
            kind=CreditApproval.Kind.PURCHASE,
            amount=amount,
            approval=approval,
        )
    balance = lock_balance(license)
    draft = EntryDraft(
        kind=Kind.PURCHASE,
        amount=amount,
        occurred_at=occurred_at or timezone.now(),
        external_id=external_id,
        description=description or "Credit purchase",
        reason=(reason or "").strip(),
        created_by_id=acting_user.pk if acting_user else None,
    )
    result, entry = post_entry(license=license, balance=balance, draft=draft, expires_at=expires_at)
    created = bool(result.inserted_external_ids)
    if created:
        invoice_issue(entry=entry, payment_method=payment_method or _paid_by(acting_user))
        if acting_user is not None:
            audit_record(
                actor=acting_user,
                license=license,
                action="purchase.record",
                target=f"ledger entry #{entry.pk}",
                changes={
                    "amount": str(amount),
                    "external_id": external_id,
                    **({"expires_at": expires_at.isoformat()} if expires_at is not None else {}),
                },
                reason=draft.reason,
            )
        money_log(
            "money purchase",
            license=license.key,
            entry=entry.pk,
            amount=amount,
            external_id=external_id,
            balance=result.balance_after,
            by=acting_user.pk if acting_user else None,
        )
        entry_moved(
            license, balance, entry, **grant_data(kind=GrantKind.PAID, expires_at=expires_at)
        )
    elif entry.kind != Kind.PURCHASE or entry.amount != amount:
        raise ApplicationError(
            f"Payment reference {external_id} was already used for a different entry.",
            field="external_id",
        )
    return PurchaseResult(entry, created)


def _paid_by(acting_user: User | None) -> str:
    if acting_user is not None:
        return "Paid outside the portal (recorded by the billing team)"
    return "Card"
