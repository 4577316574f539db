"""Refunds of usage charges (never past the charge) and goodwill credits, issued by the
billing team, each once per idempotency key."""

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
from billing.events.services import grant_data
from billing.ledger.posting import EntryDraft, exact_amount, lock_balance, post_entry
from billing.ledger.selectors import refunded_total_for_entry
from billing.models import CreditApproval, GrantKind, LedgerEntry
from billing.money import quantize_money
from portal.exceptions import ApplicationError

Kind = LedgerEntry.Kind


@dataclass(frozen=True)
class RefundResult:
    entry: LedgerEntry
    created: bool


def refundable_amount(entry: LedgerEntry) -> Decimal:
    """What is still refundable on a usage charge or a purchase (its size less the refunds
    already issued against it; refunds of a purchase are negative)."""
    return quantize_money(abs(entry.amount) - abs(refunded_total_for_entry(entry)))


@transaction.atomic
def refund_issue(
    *,
    acting_user: User,
    license: License,
    amount: Decimal,
    reason: str,
    idempotency_key: str,
    refund_of: LedgerEntry | None = None,
    approval: CreditApproval | None = None,
    expires_at: datetime | None = None,
) -> RefundResult:
    """Refund part or all of a usage charge, or (no `refund_of`) credit the license as
    goodwill: an entry of kind "credit", its own type in the ledger, and a promotional
    grant that expires at `expires_at` (None: never). Goodwill above the approval limit
    needs its `approval` (a refund is bounded by its charge instead).

    The refunds of a charge never exceed it: the check runs with the license's balance
    row locked, so two refunds issued at the same instant are decided one after another.
    The same idempotency key twice records one refund.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the refund is issued.", field="reason")
    amount = exact_amount(amount)
    if amount <= 0:
        raise ApplicationError("A refund must be a positive amount.", field="amount")
    if not idempotency_key:
        raise ApplicationError("A refund needs an idempotency key.")
    if refund_of is not None and expires_at is not None:
        raise ApplicationError("A refund of a charge gives the credit back; it has no expiry.")
    grant_expiry_check(expires_at)
    if refund_of is None:
        credit_refuse_unapproved(
            acting_user=acting_user,
            license=license,
            kind=CreditApproval.Kind.GOODWILL,
            amount=amount,
            approval=approval,
        )
    balance = lock_balance(license)
    external_id = f"refund:{idempotency_key}"
    existing = LedgerEntry.objects.for_license(license).filter(external_id=external_id).first()
    if existing is not None:
        # A double submit of the same form: the refund it asked for is already there.
        # The same key for a different refund is a mistake, not a repeat: say so.
        if (
            existing.kind != (Kind.REFUND if refund_of is not None else Kind.CREDIT)
            or existing.amount != amount
            or existing.refund_of_id != (refund_of.pk if refund_of is not None else None)
        ):
            raise ApplicationError(
                "This idempotency key was already used for a different entry "
                f"(#{existing.pk}); reload the form to issue another refund."
            )
        return RefundResult(existing, False)
    service = ""
    if refund_of is not None:
        if refund_of.license_id != license.pk or refund_of.kind != Kind.USAGE:
            # A purchase goes back to the card instead (payments.services.refunds.payment_refund_issue).
            raise ApplicationError("Only a usage charge on this license can be refunded.")
        remaining = refundable_amount(refund_of)
        if amount > remaining:
            raise ApplicationError(
                f"At most ${remaining} of this charge is still refundable.", field="amount"
            )
        service = refund_of.service
    description = f"Refund of entry #{refund_of.pk}" if refund_of is not None else "Goodwill credit"
    draft = EntryDraft(
        kind=Kind.REFUND if refund_of is not None else Kind.CREDIT,
        service=service,
        amount=amount,
        occurred_at=timezone.now(),
        external_id=external_id,
        description=description,
        refund_of_id=refund_of.pk if refund_of is not None else None,
        reason=reason,
        created_by_id=acting_user.pk,
    )
    posted, entry = post_entry(license=license, balance=balance, draft=draft, expires_at=expires_at)
    audit_record(
        actor=acting_user,
        license=license,
        action="refund.issue",
        target=f"ledger entry #{entry.pk}",
        changes={
            "amount": str(amount),
            "refund_of": refund_of.pk if refund_of is not None else None,
            "kind": draft.kind,
            **({"expires_at": expires_at.isoformat()} if expires_at is not None else {}),
        },
        reason=reason,
    )
    money_log(
        "money refund",
        license=license.key,
        entry=entry.pk,
        amount=amount,
        refund_of=draft.refund_of_id,
        balance=posted.balance_after,
        by=acting_user.pk,
    )
    # refund.issued for a usage refund, credit.granted (with its grant) for goodwill.
    more = (
        {}
        if refund_of is not None
        else grant_data(kind=GrantKind.PROMOTIONAL, expires_at=expires_at)
    )
    entry_moved(license, balance, entry, **more)
    return RefundResult(entry, True)
