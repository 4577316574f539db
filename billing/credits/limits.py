"""The four-eyes limit on credits a person gives: above CREDIT_APPROVAL_LIMIT a goodwill
credit or a hand-recorded purchase posts only from its approval (billing.credits.approvals)."""

from decimal import Decimal

from django.conf import settings

from accounts.models import License, User
from billing.models import CreditApproval
from billing.money import format_money
from portal.exceptions import ApplicationError


def credit_approval_limit() -> Decimal:
    """The largest goodwill credit or hand-recorded purchase one Billing member posts alone
    (settings.CREDIT_APPROVAL_LIMIT). Above it the credit is a request that a second,
    different Billing member approves (billing.approvals)."""
    return Decimal(str(settings.CREDIT_APPROVAL_LIMIT))


def credit_needs_approval(amount: Decimal) -> bool:
    return amount > credit_approval_limit()


def credit_refuse_unapproved(
    *,
    acting_user: User,
    license: License,
    kind: str,
    amount: Decimal,
    approval: CreditApproval | None,
) -> None:
    """A person's credit above the limit posts only from its approval (the pending request
    being approved, locked by billing.approvals.credit_approval_approve), for exactly what
    was asked, by someone other than the one who asked."""
    if approval is None:
        if credit_needs_approval(amount):
            raise ApplicationError(
                f"Amount: credits above {format_money(credit_approval_limit())} need a second "
                "Billing member's approval; ask for it instead of posting.",
                field="amount",
            )
        return
    if (approval.license_id, approval.kind, approval.amount) != (license.pk, kind, amount):
        raise ApplicationError("This credit is not the one that was asked for approval.")
    if approval.status != CreditApproval.Status.PENDING or approval.requested_by_id == (
        acting_user.pk
    ):
        raise ApplicationError("A second Billing member approves a pending request (four eyes).")
