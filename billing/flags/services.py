"""Flag this charge: a customer questions one API call's charge; the billing team answers
with a refund (the ordinary refund, linked) or in writing; the customer sees the answer on
the line and gets an email. Raising and resolving are audited."""

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from billing.handoffs import flag_resolved_email_enqueue
from billing.history.transactions import TransactionDetail, transaction_detail_get
from billing.ledger.usage import usage_record_id
from billing.models import ChargeFlag, LedgerEntry
from billing.refunds.services import RefundResult, refund_issue
from portal.exceptions import ApplicationError

FLAG_MESSAGE_MAX = 1000


def _evidence(detail: TransactionDetail) -> dict[str, object]:
    tx = detail.transaction
    return {
        "record_id": tx.record_id,
        "request_id": tx.request_id,
        "endpoint": tx.endpoint,
        "status": tx.status,
        "occurred_at": tx.occurred_at.isoformat(),
        "amount": f"{-tx.amount:f}",
        "charges": [
            {
                "entry_id": c.entry_id,
                "service": c.service,
                "quantity": c.quantity,
                "unit": c.unit,
                "unit_price": f"{c.unit_price:f}",
                "amount": f"{c.amount:f}",
            }
            for c in detail.charges
        ],
    }


@transaction.atomic
def flag_raise(*, acting_user: User, license: License, entry_id: int, message: str) -> ChargeFlag:
    """A member of the license questions the call `entry_id` belongs to."""
    message = (message or "").strip()
    if not message:
        raise ApplicationError("Say what looks wrong with this charge.", field="message")
    if len(message) > FLAG_MESSAGE_MAX:
        raise ApplicationError(
            f"Please keep it under {FLAG_MESSAGE_MAX} characters.", field="message"
        )
    detail = transaction_detail_get(license, entry_id)
    if detail is None or not detail.transaction.is_call:
        raise ApplicationError("Only a usage charge can be flagged.")
    tx = detail.transaction
    if (
        ChargeFlag.objects.for_license(license)
        .filter(record_id=tx.record_id, status=ChargeFlag.Status.OPEN)
        .exists()
    ):
        raise ApplicationError("This charge is already flagged; the billing team is on it.")
    try:
        with transaction.atomic():
            flag = ChargeFlag.objects.create(
                license=license,
                entry_id=tx.id,
                record_id=tx.record_id,
                message=message,
                evidence=_evidence(detail),
                created_by=acting_user,
            )
    except IntegrityError as exc:  # the same charge flagged at the same instant
        raise ApplicationError(
            "This charge is already flagged; the billing team is on it."
        ) from exc
    audit_record(
        actor=acting_user,
        license=license,
        action="flag.raise",
        target=f"flag #{flag.pk} on ledger entry #{tx.id}",
        changes={"record_id": tx.record_id},
        reason=message,
    )
    return flag


@transaction.atomic
def flag_resolve(
    *, acting_user: User, flag: ChargeFlag, answer: str, refund: LedgerEntry | None = None
) -> ChargeFlag:
    """Close an open flag with a written answer (and the refund that settled it, if any);
    the customer's email goes out after the commit."""
    answer = (answer or "").strip()
    if not answer:
        raise ApplicationError("Write the answer the customer will read.", field="answer")
    flag = ChargeFlag.objects.select_for_update().get(pk=flag.pk)
    if flag.status != ChargeFlag.Status.OPEN:
        raise ApplicationError("This flag is already resolved.")
    flag.status = ChargeFlag.Status.RESOLVED
    flag.answer = answer
    flag.refund = refund
    flag.resolved_at = timezone.now()
    flag.resolved_by = acting_user
    flag.save(update_fields=["status", "answer", "refund", "resolved_at", "resolved_by"])
    audit_record(
        actor=acting_user,
        license=flag.license,
        action="flag.resolve",
        target=f"flag #{flag.pk} on ledger entry #{flag.entry_id}",
        changes={"refund": refund.pk if refund is not None else None},
        reason=answer,
    )
    flag_id = flag.pk
    transaction.on_commit(lambda: flag_resolved_email_enqueue(flag_id=flag_id))
    return flag


@transaction.atomic
def flag_resolve_with_refund(
    *,
    acting_user: User,
    flag: ChargeFlag,
    charge: LedgerEntry,
    amount: Decimal,
    reason: str,
    idempotency_key: str,
) -> RefundResult:
    """Refund (part of) one of the flagged call's charges and resolve the flag with the
    refund's reason as the answer, in one transaction."""
    if charge.license_id != flag.license_id or charge.pk not in _call_entry_ids(flag):
        raise ApplicationError("This charge is not the flagged call's.")
    result = refund_issue(
        acting_user=acting_user,
        license=flag.license,
        amount=amount,
        reason=reason,
        idempotency_key=idempotency_key,
        refund_of=charge,
    )
    if result.created:
        flag_resolve(acting_user=acting_user, flag=flag, answer=reason, refund=result.entry)
    return result


def _call_entry_ids(flag: ChargeFlag) -> set[int]:
    detail = transaction_detail_get(flag.license, flag.entry_id)
    return {line.id for line in detail.transaction.lines} if detail else set()


# --- reads ---------------------------------------------------------------------------


def flag_open_for_charge(charge: LedgerEntry) -> ChargeFlag | None:
    """The customer's open flag on the API call this charge belongs to, if any: a refund
    of the charge answers it (billing.admin.money), wherever billing issues it from."""
    if charge.kind != LedgerEntry.Kind.USAGE:
        return None
    return (
        ChargeFlag.objects.for_license(charge.license)
        .filter(record_id=usage_record_id(charge.external_id), status=ChargeFlag.Status.OPEN)
        .first()
    )


def flags_for_records(license: License, record_ids: list[str]) -> dict[str, ChargeFlag]:
    """The latest flag of each of these calls (open before resolved), by record id."""
    if not record_ids:
        return {}
    flags = (
        ChargeFlag.objects.for_license(license)
        .filter(record_id__in=record_ids)
        .select_related("refund")
        .order_by("record_id", "-created_at", "-id")
    )
    latest: dict[str, ChargeFlag] = {}
    for flag in flags:
        latest.setdefault(flag.record_id, flag)
    return latest
