"""The money flows: purchases, usage batches and refunds.

Each decides what to post and posts it through the engine (billing.ledger) in one
transaction holding the license's balance row; what follows a balance change (the
low-balance alert decision, then its email after commit) is `_after_balance_change`.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from billing.alerts import balance_alert_check
from billing.hooks import balance_changed, purchase_refunder_for
from billing.ledger import (
    EntryDraft,
    UsageDraft,
    exact_amount,
    lock_balance,
    post_entry,
    post_usage,
)
from billing.models import BalanceAlert, CreditApproval, LedgerEntry, LicenseBalance, Service
from billing.money import format_money, quantize_money
from billing.prices import PriceBook, price_book_get
from billing.selectors import refunded_total_for_entry
from billing.signals import (
    BALANCE_DEPLETED,
    BALANCE_LOW,
    PURCHASE_SUCCEEDED,
    REFUND_ISSUED,
    billing_event,
)
from billing.tasks import balance_alert_handoff
from portal.exceptions import ApplicationError
from portal.logfmt import logfmt

logger = logging.getLogger(__name__)

Kind = LedgerEntry.Kind


def _log_money(event: str, **fields: object) -> None:
    """One line per money movement, written once its transaction commits: a movement rolled
    back (a crash, a refused refund) never shows in the log as if it had happened."""
    line = logfmt(event, **fields)
    transaction.on_commit(lambda: logger.info(line))


# --- the four-eyes limit on credits a person gives ------------------------------------


def credit_approval_limit() -> Decimal:
    """The largest goodwill credit or hand-recorded purchase one Billing member posts alone
    (settings.CREDIT_APPROVAL_LIMIT). Above it the credit is a request that a second,
    different Billing member approves (billing.approvals)."""
    return Decimal(str(settings.CREDIT_APPROVAL_LIMIT))


def credit_needs_approval(amount: Decimal) -> bool:
    return amount > credit_approval_limit()


def _refuse_unapproved_credit(
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


# --- purchases -------------------------------------------------------------------------


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
) -> PurchaseResult:
    """Record a purchase of credits. The same external id twice records once.

    A purchase a person records (`acting_user`) above the approval limit needs its
    `approval`; one a payment provider reports (no acting user) was paid, and is not limited.
    """
    amount = exact_amount(amount)
    if amount <= 0:
        raise ApplicationError("A purchase must be a positive amount.", field="amount")
    external_id = (external_id or "").strip()
    if not external_id:
        raise ApplicationError("A purchase needs a payment reference.", field="external_id")
    if acting_user is not None:
        _refuse_unapproved_credit(
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
        created_by_id=acting_user.pk if acting_user else None,
    )
    result, entry = post_entry(license=license, balance=balance, draft=draft)
    created = bool(result.inserted_external_ids)
    if created:
        if acting_user is not None:
            audit_record(
                actor=acting_user,
                license=license,
                action="purchase.record",
                target=f"ledger entry #{entry.pk}",
                changes={"amount": str(amount), "external_id": external_id},
            )
        _log_money(
            "money purchase",
            license=license.key,
            entry=entry.pk,
            amount=amount,
            external_id=external_id,
            balance=result.balance_after,
            by=acting_user.pk if acting_user else None,
        )
        _announce(PURCHASE_SUCCEEDED, license, entry, balance_after=result.balance_after)
        _after_balance_change(license, balance, latest_at=entry.occurred_at, lowered=False)
    elif entry.kind != Kind.PURCHASE or entry.amount != amount:
        raise ApplicationError(
            f"Payment reference {external_id} was already used for a different entry.",
            field="external_id",
        )
    return PurchaseResult(entry, created)


# --- usage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageRecord:
    """One upstream API call, already validated."""

    id: str
    occurred_at: datetime
    input_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    images: int = 0
    request_id: str = ""
    endpoint: str = ""
    status: str = "success"


@dataclass
class UsageBatchResult:
    records_charged: int = 0
    records_duplicate: int = 0
    entries_created: int = 0
    amount: Decimal = field(default_factory=lambda: Decimal("0"))
    balance_before: Decimal | None = None
    balance_after: Decimal | None = None


# Which price each of a record's counts is charged at; the posting statement turns them
# into one charge per service used, in this order (billing.ledger.post_usage).
_USAGE_PARTS = (
    ("input_tokens", Service.AI_DATA),
    ("cached_tokens", Service.AI_DATA_CACHED),
    ("completion_tokens", Service.AI_DATA_COMPLETION),
    ("images", Service.AI_IMAGES),
)


def usage_entry_external_id(record_id: str, service: str) -> str:
    return f"{record_id}:{service}"


def _usage_draft(record: UsageRecord) -> UsageDraft:
    # A sync drafts every record it charges: the label its entries carry, and its texts cut
    # to what the entries hold.
    request_id, endpoint, status = record.request_id, record.endpoint, record.status
    if request_id:
        label = f"{endpoint} ({request_id})" if endpoint else f"({request_id})"
    else:
        label = endpoint
    if status != "success":
        label = f"{label} [{status}]".strip()
    return UsageDraft(
        record.id,
        record.occurred_at,
        record.input_tokens,
        record.cached_tokens,
        record.completion_tokens,
        record.images,
        label[:500],
        request_id[:100],
        endpoint[:200],
        status[:32],
    )


def usage_prices_check(records: Sequence[UsageRecord], prices: PriceBook) -> None:
    """Raise ApplicationError unless each count of each record has a price in effect at its
    time (a sync's records were checked so by usage.services.record_parse)."""
    for record in records:
        for attr, service in _USAGE_PARTS:
            if getattr(record, attr) > 0:
                prices.unit_price(service, record.occurred_at)


@dataclass(frozen=True)
class UsageDrafts:
    """A batch of usage records as the posting statement takes them, checked against one
    price book: the half of usage_record_batch that needs no database, so a sync can do it
    for the next page while this one is posted."""

    records: Sequence[UsageRecord]
    prices: PriceBook
    drafts: list[UsageDraft]  # each distinct record once (a repeated id is charged once)
    quantity: int  # the drafts' quantities added up: a bound on what they are charged


def usage_drafts(
    records: Sequence[UsageRecord], *, prices: PriceBook, prices_checked: bool = False
) -> UsageDrafts:
    """Each distinct record (a record id repeated in the batch counts once), drafted.
    Raises ApplicationError if a record has no price in effect, unless the caller checked
    each record against `prices` already (`prices_checked`: a sync's record_parse)."""
    if not prices_checked:
        usage_prices_check(records, prices)
    seen: set[str] = set()
    drafts: list[UsageDraft] = []
    quantity = 0
    for record in records:
        if record.id in seen:
            continue
        seen.add(record.id)
        drafts.append(_usage_draft(record))
        quantity += (
            record.input_tokens + record.cached_tokens + record.completion_tokens + record.images
        )
    return UsageDrafts(records, prices, drafts, quantity)


@transaction.atomic
def usage_record_batch(
    *, license: License, records: Sequence[UsageRecord] | UsageDrafts
) -> UsageBatchResult:
    """Charge a batch of upstream usage records, each at most once.

    Records already in the ledger (from this batch or an earlier one) are skipped and
    counted. Usage is recorded even when it takes the balance below zero: the upstream
    already served the call. Raises ApplicationError if a record has no price in effect.

    `records` may come drafted already (`usage_drafts`); they are charged at the prices
    read here, in the transaction, so drafts checked against a price book that has changed
    since are checked again.
    """
    result = UsageBatchResult()
    balance = lock_balance(license)
    prices = price_book_get()
    if not isinstance(records, UsageDrafts) or records.prices != prices:
        records = usage_drafts(
            records.records if isinstance(records, UsageDrafts) else records, prices=prices
        )
    drafts = records.drafts
    posted = post_usage(
        license=license, balance=balance, usage=drafts, prices=prices, quantity=records.quantity
    )
    result.entries_created = posted.entries_inserted
    if posted.inserted_external_ids is None:
        # Every entry was new (a page seen for the first time): spare a sync's page the
        # per-entry work of finding out which were.
        result.records_charged = len(drafts)
        latest_at = max((d.occurred_at for d in drafts), default=None)
    else:
        charged = {eid.rsplit(":", 1)[0] for eid in posted.inserted_external_ids}
        result.records_charged = len(charged)
        latest_at = max((d.occurred_at for d in drafts if d.record_id in charged), default=None)
    result.records_duplicate = len(records.records) - result.records_charged
    # Usage entries are all the batch posted: what they came to is what the balance moved.
    result.amount = posted.balance_after - posted.balance_before
    result.balance_before, result.balance_after = posted.balance_before, posted.balance_after
    if result.entries_created:
        assert latest_at is not None
        _log_money(
            "money usage",
            license=license.key,
            records=result.records_charged,
            entries=result.entries_created,
            amount=result.amount,
            skipped=result.records_duplicate,
            balance=result.balance_after,
        )
        _after_balance_change(
            license,
            balance,
            latest_at=latest_at,
            lowered=True,
        )
    return result


# --- refunds ---------------------------------------------------------------------------


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
) -> RefundResult:
    """Refund part or all of a usage charge, or (no `refund_of`) credit the license as
    goodwill: an entry of kind "credit", its own type in the ledger. Goodwill above the
    approval limit needs its `approval` (a refund is bounded by its charge instead).

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
    if refund_of is None:
        _refuse_unapproved_credit(
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
            # A purchase goes back to the card instead: purchase_refund_issue.
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
    posted, entry = post_entry(license=license, balance=balance, draft=draft)
    audit_record(
        actor=acting_user,
        license=license,
        action="refund.issue",
        target=f"ledger entry #{entry.pk}",
        changes={
            "amount": str(amount),
            "refund_of": refund_of.pk if refund_of is not None else None,
            "kind": draft.kind,
        },
        reason=reason,
    )
    _log_money(
        "money refund",
        license=license.key,
        entry=entry.pk,
        amount=amount,
        refund_of=draft.refund_of_id,
        balance=posted.balance_after,
        by=acting_user.pk,
    )
    _announce(REFUND_ISSUED, license, entry, balance_after=posted.balance_after)
    _after_balance_change(license, balance, latest_at=entry.occurred_at, lowered=False)
    return RefundResult(entry, True)


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
    _announce(REFUND_ISSUED, license, entry, balance_after=posted.balance_after)
    _log_money(
        "money refund",
        license=license.key,
        entry=entry.pk,
        amount=-amount,
        refund_of=purchase.pk,
        balance=posted.balance_after,
        by=acting_user.pk if acting_user else None,
    )
    _after_balance_change(license, balance, latest_at=draft.occurred_at, lowered=True)
    return RefundResult(entry, True)


def _after_balance_change(
    license: License, balance: LicenseBalance, *, latest_at: datetime, lowered: bool
) -> None:
    """What follows a balance change (a whole batch of movements, the newest at
    `latest_at`), still inside its transaction with the row locked."""
    alert = balance_alert_check(
        license=license, balance=balance, latest_at=latest_at, lowered=lowered
    )
    if alert is not None:
        transaction.on_commit(lambda: balance_alert_handoff(alert_id=alert.pk))
        # Once per line crossed, like the email: the webhook event is recorded with the alert.
        billing_event.send(
            sender=BalanceAlert,
            event_type=BALANCE_DEPLETED if alert.kind == BalanceAlert.Kind.ZERO else BALANCE_LOW,
            license=license,
            data={
                "balance": f"{alert.balance:f}",
                "threshold": f"{alert.threshold:f}",
                "crossed_at": alert.crossed_at.isoformat(),
            },
        )
    balance_changed.send(sender=LicenseBalance, license=license, balance=balance)


def _announce(
    event_type: str, license: License, entry: LedgerEntry, *, balance_after: Decimal | None
) -> None:
    """Tell the apps above that money moved (billing.signals), inside the transaction."""
    billing_event.send(
        sender=LedgerEntry,
        event_type=event_type,
        license=license,
        data={
            "transaction_id": entry.pk,
            "amount": f"{quantize_money(entry.amount):f}",
            "description": entry.description,
            "occurred_at": entry.occurred_at.isoformat(),
            "balance_after": f"{quantize_money(balance_after):f}"
            if balance_after is not None
            else None,
        },
    )
