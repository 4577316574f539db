"""Credit granted by a person (`manage.py credit_grant`): promotional credit (goodwill,
promotions, sign-up credit) as a credit entry, or paid credit recorded by hand (a payment
made outside the portal) as a purchase, either with an optional expiry. The four-eyes rule
holds: above CREDIT_APPROVAL_LIMIT the grant is a request a second Billing member approves
(billing.credits.approvals), which then posts it with its expiry. Audited as the postings
and requests it makes are (refund.issue, purchase.record, credit.request)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from accounts.models import License, User
from billing.credits.approvals import credit_approval_request
from billing.credits.expiry import grant_expiry_check
from billing.credits.limits import credit_needs_approval
from billing.ledger.posting import exact_amount
from billing.models import CreditApproval, GrantKind, LedgerEntry
from billing.purchases.services import purchase_record
from billing.refunds.services import refund_issue
from portal.exceptions import ApplicationError


@dataclass(frozen=True)
class GrantIssued:
    """What a grant request did: posted `entry`, or asked for `approval`."""

    entry: LedgerEntry | None
    approval: CreditApproval | None
    created: bool  # False: a repeat of the same idempotency key


def paid_grant_reference(idempotency_key: str) -> str:
    """The purchase's payment reference of paid credit granted by hand."""
    return f"grant:{idempotency_key}"


@transaction.atomic
def credit_grant_issue(
    *,
    acting_user: User,
    license: License,
    amount: Decimal,
    kind: str,
    reason: str,
    idempotency_key: str,
    expires_at: datetime | None = None,
) -> GrantIssued:
    """Grant credit to a license: `kind` promotional (a credit entry) or paid (a purchase
    recorded by hand), expiring at `expires_at` (None: never). The same idempotency key
    twice grants once."""
    if kind not in GrantKind.values:
        raise ApplicationError(
            f"Kind: '{kind}' is not a kind of credit; say promotional or paid.", field="kind"
        )
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the credit is granted.", field="reason")
    if not idempotency_key:
        raise ApplicationError("A grant needs an idempotency key.")
    amount = exact_amount(amount)
    if amount <= 0:
        raise ApplicationError("A credit must be a positive amount.", field="amount")
    grant_expiry_check(expires_at)
    promotional = kind == GrantKind.PROMOTIONAL
    reference = paid_grant_reference(idempotency_key)
    if credit_needs_approval(amount):
        requested = credit_approval_request(
            acting_user=acting_user,
            license=license,
            kind=CreditApproval.Kind.GOODWILL if promotional else CreditApproval.Kind.PURCHASE,
            amount=amount,
            reason=reason,
            external_id="" if promotional else reference,
            description="" if promotional else f"Paid credit: {reason}"[:500],
            idempotency_key=idempotency_key,
            expires_at=expires_at,
        )
        return GrantIssued(None, requested.approval, requested.created)
    if promotional:
        refunded = refund_issue(
            acting_user=acting_user,
            license=license,
            amount=amount,
            reason=reason,
            idempotency_key=idempotency_key,
            expires_at=expires_at,
        )
        return GrantIssued(refunded.entry, None, refunded.created)
    purchased = purchase_record(
        acting_user=acting_user,
        license=license,
        amount=amount,
        external_id=reference,
        description=f"Paid credit: {reason}"[:500],
        expires_at=expires_at,
        reason=reason,
    )
    return GrantIssued(purchased.entry, None, purchased.created)
