"""Four eyes on large credits: a goodwill credit or a purchase recorded by hand above
CREDIT_APPROVAL_LIMIT is a request (`CreditApproval`) that a second, different Billing
member approves, which posts the credit once, or rejects with a reason. The request, the
approval and the rejection are each audited in their transaction.

Exactly once: approving locks the request row, so two approvers at the same instant (or a
double click, or a retry) are decided one after another and the later one finds it
approved; the credit itself is posted under the request's key (the goodwill form's
idempotency key, the purchase's payment reference), so even a repeat that got past the
request would change nothing in the ledger."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from billing.credits.expiry import grant_expiry_check
from billing.credits.limits import credit_approval_limit, credit_needs_approval
from billing.ledger.posting import exact_amount, lock_balance
from billing.models import CreditApproval, LedgerEntry
from billing.money import format_money
from billing.purchases.services import purchase_record
from billing.refunds.services import refund_issue
from portal.exceptions import ApplicationError

Kind = CreditApproval.Kind
Status = CreditApproval.Status


@dataclass(frozen=True)
class ApprovalResult:
    approval: CreditApproval
    created: bool  # the request was made, or the decision taken, now (False: a repeat)


def _key_for(kind: str, *, idempotency_key: str, external_id: str) -> str:
    return f"purchase:{external_id}" if kind == Kind.PURCHASE else idempotency_key


@transaction.atomic
def credit_approval_request(
    *,
    acting_user: User,
    license: License,
    kind: str,
    amount: Decimal,
    reason: str = "",
    external_id: str = "",
    description: str = "",
    idempotency_key: str = "",
    expires_at: datetime | None = None,
) -> ApprovalResult:
    """Ask a second Billing member to approve a credit above the limit. The same form
    submitted twice (the same idempotency key, or for a purchase the same payment
    reference) is one request. `expires_at`: when its grant expires once approved (None:
    never)."""
    amount = exact_amount(amount)
    if amount <= 0:
        raise ApplicationError("A credit must be a positive amount.", field="amount")
    if not credit_needs_approval(amount):
        raise ApplicationError(
            f"Credits up to {format_money(credit_approval_limit())} are posted directly.",
            field="amount",
        )
    reason, external_id = (reason or "").strip(), (external_id or "").strip()
    if kind == Kind.GOODWILL and not reason:
        raise ApplicationError("Say why the credit is given.", field="reason")
    if kind == Kind.PURCHASE and not external_id:
        raise ApplicationError("A purchase needs a payment reference.", field="external_id")
    if kind == Kind.GOODWILL and not idempotency_key:
        raise ApplicationError("A credit needs an idempotency key.")
    grant_expiry_check(expires_at)
    key = _key_for(kind, idempotency_key=idempotency_key, external_id=external_id)
    # The license's money lock: a double submit's two requests are decided in turn.
    lock_balance(license)
    existing = (
        CreditApproval.objects.for_license(license)
        .filter(key=key)
        .exclude(status=Status.REJECTED)
        .first()
    )
    if existing is not None:
        if (existing.kind, existing.amount) != (kind, amount):
            raise ApplicationError(
                f"Request #{existing.pk} already asks for {format_money(existing.amount)} "
                "under this reference; reject it first, or use another reference.",
                field="external_id" if kind == Kind.PURCHASE else None,
            )
        return ApprovalResult(existing, False)
    if kind == Kind.PURCHASE:
        used = LedgerEntry.objects.for_license(license).filter(external_id=external_id).first()
        if used is not None:
            raise ApplicationError(
                f"Payment reference {external_id} was already used (entry #{used.pk}).",
                field="external_id",
            )
    approval = CreditApproval.objects.create(
        license=license,
        kind=kind,
        amount=amount,
        reason=reason,
        external_id=external_id,
        description=(description or "").strip(),
        key=key,
        requested_by=acting_user,
        expires_at=expires_at,
    )
    audit_record(
        actor=acting_user,
        license=license,
        action="credit.request",
        target=f"credit approval #{approval.pk}",
        changes={
            "kind": kind,
            "amount": str(amount),
            "external_id": external_id,
            **({"expires_at": expires_at.isoformat()} if expires_at is not None else {}),
        },
        reason=reason,
    )
    return ApprovalResult(approval, True)


def _locked_pending(approval_id: int, acting_user: User) -> CreditApproval | None:
    """The request, locked; None when it is already approved (a repeat). Refuses a
    rejected one and the requester's own decision."""
    approval = (
        CreditApproval.objects.select_for_update(of=("self",))
        .select_related("license", "decided_by")
        .get(pk=approval_id)
    )
    if approval.status == Status.APPROVED:
        return None
    if approval.status == Status.REJECTED:
        raise ApplicationError(
            f"Request #{approval.pk} was rejected by {approval.decided_by}: "
            f"{approval.rejection_reason}"
        )
    if approval.requested_by_id == acting_user.pk:
        raise ApplicationError(
            "You asked for this credit: a second Billing member decides it (four eyes)."
        )
    return approval


@transaction.atomic
def credit_approval_approve(*, acting_user: User, approval_id: int) -> ApprovalResult:
    """Approve a pending request and post its credit, once: the approver is the entry's
    author (their decision moved the money); the requester stays on the request."""
    approval = _locked_pending(approval_id, acting_user)
    if approval is None:
        return ApprovalResult(CreditApproval.objects.get(pk=approval_id), False)
    license = approval.license
    if approval.kind == Kind.PURCHASE:
        entry = purchase_record(
            acting_user=acting_user,
            license=license,
            amount=approval.amount,
            external_id=approval.external_id,
            description=approval.description,
            approval=approval,
            expires_at=approval.expires_at,
            reason=approval.reason,
        ).entry
    else:
        entry = refund_issue(
            acting_user=acting_user,
            license=license,
            amount=approval.amount,
            reason=approval.reason,
            idempotency_key=approval.key,
            approval=approval,
            expires_at=approval.expires_at,
        ).entry
    approval.status = Status.APPROVED
    approval.decided_by = acting_user
    approval.decided_at = timezone.now()
    approval.entry = entry
    approval.save(update_fields=["status", "decided_by", "decided_at", "entry"])
    audit_record(
        actor=acting_user,
        license=license,
        action="credit.approve",
        target=f"credit approval #{approval.pk}",
        changes={
            "kind": approval.kind,
            "amount": str(approval.amount),
            "entry": entry.pk,
            "requested_by": approval.requested_by_id,
        },
    )
    return ApprovalResult(approval, True)


@transaction.atomic
def credit_approval_reject(*, acting_user: User, approval_id: int, reason: str) -> ApprovalResult:
    """Reject a pending request with a reason; nothing is credited."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the credit is rejected.", field="reason")
    approval = _locked_pending(approval_id, acting_user)
    if approval is None:
        done = CreditApproval.objects.get(pk=approval_id)
        raise ApplicationError(
            f"Request #{done.pk} was already approved and credited as entry #{done.entry_id}; "
            "correct it with a new entry."
        )
    approval.status = Status.REJECTED
    approval.decided_by = acting_user
    approval.decided_at = timezone.now()
    approval.rejection_reason = reason
    approval.save(update_fields=["status", "decided_by", "decided_at", "rejection_reason"])
    audit_record(
        actor=acting_user,
        license=approval.license,
        action="credit.reject",
        target=f"credit approval #{approval.pk}",
        changes={
            "kind": approval.kind,
            "amount": str(approval.amount),
            "requested_by": approval.requested_by_id,
        },
        reason=reason,
    )
    return ApprovalResult(approval, True)
