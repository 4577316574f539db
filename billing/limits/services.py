"""Setting a license's spend limits: owners choose the floor (within what the billing team
approved below zero) and the monthly cap on their Spend limits page; staff allowed to
(`billing.approve_overdraft`: the Billing role) also approve how far below zero the floor
may go, in the console. Every change is audited in its transaction and holds from the
gate's next authorization on (the gate reads the row under its lock)."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from billing.limits.models import SpendLimit
from billing.money import format_money, money_exact
from portal.exceptions import ApplicationError


def spend_limit_lock(license: License) -> SpendLimit:
    """Lock (creating if needed) the license's spend-limit row for this transaction."""
    limit = SpendLimit.objects.select_for_update().filter(license=license).first()
    if limit is None:
        SpendLimit.objects.bulk_create([SpendLimit(license=license)], ignore_conflicts=True)
        limit = SpendLimit.objects.select_for_update().get(license=license)
    return limit


def _amount(value: Decimal, *, field: str) -> Decimal:
    try:
        return money_exact(value)
    except ValueError as exc:
        message = str(exc)
        raise ApplicationError(f"{message[0].upper()}{message[1:]}.", field=field) from exc


def can_approve_overdraft(user: User) -> bool:
    return user.is_active and user.is_staff and user.has_perm("billing.approve_overdraft")


def _shown(value: Decimal | None) -> str:
    return "none" if value is None else f"{value:f}"


@transaction.atomic
def spend_limit_set(
    *,
    acting_user: User,
    license: License,
    floor: Decimal,
    monthly_cap: Decimal | None,
    overdraft_approved: Decimal | None = None,
    reason: str = "",
) -> SpendLimit:
    """Set the floor (≤ 0, not below −overdraft_approved) and the monthly cap (> 0, or None);
    with `overdraft_approved` (staff with billing.approve_overdraft only), first how far
    below zero the floor may go. Raises ApplicationError (with its field) otherwise."""
    limit = spend_limit_lock(license)
    before = {
        "overdraft_approved": _shown(limit.overdraft_approved),
        "floor": _shown(limit.floor),
        "monthly_cap": _shown(limit.monthly_cap),
    }
    if overdraft_approved is not None:
        if not can_approve_overdraft(acting_user):
            raise ApplicationError(
                "Only the billing team approves spending below zero.", field="overdraft_approved"
            )
        overdraft_approved = _amount(overdraft_approved, field="overdraft_approved")
        if overdraft_approved < 0:
            raise ApplicationError(
                "The approved overdraft is an amount of zero or more.", field="overdraft_approved"
            )
        if overdraft_approved != limit.overdraft_approved:
            limit.overdraft_approved = overdraft_approved
            limit.overdraft_approved_by = acting_user
    floor = _amount(floor, field="floor")
    if floor > 0:
        raise ApplicationError("The floor is $0.00 or below.", field="floor")
    if floor < -limit.overdraft_approved:
        if limit.overdraft_approved == 0:
            message = (
                "Spending below $0.00 needs the billing team's approval; ask them to allow it."
            )
        else:
            message = (
                f"The billing team approved spending down to "
                f"−{format_money(limit.overdraft_approved)} at most."
            )
        raise ApplicationError(message, field="floor")
    if monthly_cap is not None:
        monthly_cap = _amount(monthly_cap, field="monthly_cap")
        if monthly_cap <= 0:
            raise ApplicationError(
                "A monthly cap is more than $0.00 (leave it empty for none).", field="monthly_cap"
            )
    limit.floor, limit.monthly_cap = floor, monthly_cap
    limit.updated_at = timezone.now()
    limit.save()
    after = {
        "overdraft_approved": _shown(limit.overdraft_approved),
        "floor": _shown(limit.floor),
        "monthly_cap": _shown(limit.monthly_cap),
    }
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changes:
        audit_record(
            actor=acting_user,
            license=license,
            action="spend_limit.update",
            target=f"license {license.key}",
            changes=changes,
            reason=reason,
        )
    return limit
