"""The only way money moves: purchases, usage batches and refunds.

Every service here runs in one transaction that first locks the license's balance row,
so money movements on one license are serialized. Entries are posted by one set-based
statement (`_post_entries`) that inserts them, skipping external ids already present,
and adds exactly what it inserted to the daily rollups and the balance totals.
"""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import License, User
from accounts.services import audit_record
from billing.alerts import balance_alert_check
from billing.models import LedgerEntry, LicenseBalance, Price, Service
from billing.money import PRICE_MAX_DIGITS, PRICE_PLACES, charge_for, money_exact, quantize_money
from billing.selectors import PriceBook, price_book_get
from portal.exceptions import ApplicationError
from portal.logfmt import logfmt

logger = logging.getLogger(__name__)

Kind = LedgerEntry.Kind


class EntryDraft(NamedTuple):
    """An entry to post. A named tuple, not a dataclass: a sync makes a thousand per page,
    and a frozen dataclass costs three times as much to create."""

    kind: str
    amount: Decimal
    occurred_at: datetime
    external_id: str
    service: str = ""
    tokens: int = 0
    images: int = 0
    api_calls: int = 0
    description: str = ""
    refund_of_id: int | None = None
    reason: str = ""
    created_by_id: int | None = None


@dataclass(frozen=True)
class PostResult:
    inserted_external_ids: list[str]
    balance_before: Decimal
    balance_after: Decimal


# What a set of entries adds to a license's balance and totals (LicenseBalance's columns):
# used on the rows one posting inserted, and on a license's whole ledger to rebuild.
_SUMS_OF_ENTRIES = """
        coalesce(sum(amount), 0) AS amount,
        coalesce(sum(amount) FILTER (WHERE kind = 'purchase'), 0) AS purchased,
        coalesce(-sum(amount) FILTER (WHERE kind = 'usage'), 0) AS spent,
        coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunded,
        coalesce(sum(api_calls), 0) AS api_calls,
        coalesce(sum(tokens) FILTER (WHERE kind = 'usage' AND service = 'ai_data'), 0) AS input_tokens,
        coalesce(sum(tokens) FILTER (WHERE kind = 'usage' AND service = 'ai_data_cached'), 0) AS cached_tokens,
        coalesce(sum(tokens) FILTER (WHERE kind = 'usage' AND service = 'ai_data_completion'), 0) AS completion_tokens,
        coalesce(sum(images) FILTER (WHERE kind = 'usage'), 0) AS images,
        coalesce(-sum(amount) FILTER (WHERE kind = 'usage' AND service = 'ai_images'), 0) AS images_spent,
        count(*) AS entries
"""

_POST_SQL = (
    """
WITH draft AS (
    SELECT e->>0 AS kind, e->>1 AS service, (e->>2)::numeric AS amount,
           (e->>3)::bigint AS tokens, (e->>4)::bigint AS images, (e->>5)::smallint AS api_calls,
           e->>6 AS description, (e->>7)::timestamptz AS occurred_at, e->>8 AS external_id,
           (e->>9)::bigint AS refund_of_id, e->>10 AS reason, (e->>11)::bigint AS created_by_id
    FROM jsonb_array_elements(%(drafts)s::jsonb) AS e
),
inserted AS (
    INSERT INTO billing_ledgerentry (
        license_id, kind, service, amount, tokens, images, api_calls, description,
        occurred_at, recorded_at, external_id, refund_of_id, reason, created_by_id
    )
    SELECT %(license_id)s, kind, service, amount, tokens, images, api_calls, description,
           occurred_at, %(now)s, external_id, refund_of_id, reason, created_by_id
    FROM draft
    ON CONFLICT (license_id, external_id) DO NOTHING
    RETURNING kind, service, amount, tokens, images, api_calls, occurred_at, external_id
),
rolled AS (
    INSERT INTO billing_dailyrollup (
        license_id, day, kind, service, amount, tokens, images, api_calls, entries
    )
    SELECT %(license_id)s, (occurred_at AT TIME ZONE %(tz)s)::date, kind, service,
           sum(amount), sum(tokens), sum(images), sum(api_calls), count(*)
    FROM inserted
    GROUP BY 2, 3, 4
    ON CONFLICT (license_id, day, kind, service) DO UPDATE SET
        amount = billing_dailyrollup.amount + EXCLUDED.amount,
        tokens = billing_dailyrollup.tokens + EXCLUDED.tokens,
        images = billing_dailyrollup.images + EXCLUDED.images,
        api_calls = billing_dailyrollup.api_calls + EXCLUDED.api_calls,
        entries = billing_dailyrollup.entries + EXCLUDED.entries
),
sums AS (
    SELECT """
    + _SUMS_OF_ENTRIES
    + """
    FROM inserted
),
totals AS (
    UPDATE billing_licensebalance AS b SET
        balance = b.balance + s.amount,
        total_purchased = b.total_purchased + s.purchased,
        total_spent = b.total_spent + s.spent,
        total_refunded = b.total_refunded + s.refunded,
        api_calls = b.api_calls + s.api_calls,
        input_tokens = b.input_tokens + s.input_tokens,
        cached_tokens = b.cached_tokens + s.cached_tokens,
        completion_tokens = b.completion_tokens + s.completion_tokens,
        images = b.images + s.images,
        images_spent = b.images_spent + s.images_spent,
        entries = b.entries + s.entries,
        updated_at = %(now)s
    FROM sums AS s
    WHERE b.license_id = %(license_id)s
    RETURNING b.balance
)
SELECT (SELECT balance FROM totals),
       coalesce((SELECT array_agg(external_id) FROM inserted), '{}')
"""
)


def lock_balance(license: License) -> LicenseBalance:
    """Lock (creating if needed) the license's balance row for this transaction.

    Also re-reads the license's timezone once the lock is held: the caller's License may
    have been loaded before a timezone change, and `rollups_rebuild` (run by that change
    under this same lock) would otherwise be followed by entries rolled up into the old
    timezone's days.
    """
    LicenseBalance.objects.get_or_create(license=license)
    balance = LicenseBalance.objects.select_for_update().get(license=license)
    license.refresh_from_db(fields=["timezone"])
    return balance


def _exact_amount(amount: Decimal) -> Decimal:
    """An amount a person or payment system gave, refused (not rounded) if it has >6 places."""
    try:
        return money_exact(amount)
    except ValueError as exc:
        raise ApplicationError(f"Amount: {exc}.", field="amount") from exc


def _post_entries(
    *, license: License, balance: LicenseBalance, drafts: Sequence[EntryDraft]
) -> PostResult:
    """Insert drafts not yet in the ledger and add them to rollups and totals.

    Must run inside the transaction that holds `balance` locked.
    """
    if not drafts:
        return PostResult([], balance.balance, balance.balance)
    for d in drafts:
        if d.amount != quantize_money(d.amount):
            raise ValueError(f"amount {d.amount} is not quantized to 6 places")
    # The drafts travel as one JSON array of arrays: json.dumps is C, while psycopg adapts
    # list parameters element by element in Python (~15 µs an entry, more than PostgreSQL
    # takes to insert it). Amounts go as exact decimal strings, moments as ISO 8601 with
    # their offset; PostgreSQL casts each field back to the column's type.
    payload = json.dumps(
        [
            [
                d.kind, d.service, f"{d.amount:f}", d.tokens, d.images, d.api_calls,
                d.description, d.occurred_at.isoformat(), d.external_id, d.refund_of_id,
                d.reason, d.created_by_id,
            ]
            for d in drafts
        ],
        separators=(",", ":"),
    )  # fmt: skip
    params = {
        "drafts": payload,
        "license_id": license.pk,
        "tz": license.timezone,
        "now": timezone.now(),
    }
    with connection.cursor() as cursor:
        cursor.execute(_POST_SQL, params)
        balance_after, inserted = cursor.fetchone()
    before = balance.balance
    after = balance_after if balance_after is not None else before
    balance.balance = after
    return PostResult(list(inserted), before, after)


def _log_money(event: str, **fields) -> None:
    """One line per money movement, written once its transaction commits: a movement rolled
    back (a crash, a refused refund) never shows in the log as if it had happened."""
    line = logfmt(event, **fields)
    transaction.on_commit(lambda: logger.info(line))


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
) -> PurchaseResult:
    """Record a purchase of credits. The same external id twice records once."""
    amount = _exact_amount(amount)
    if amount <= 0:
        raise ApplicationError("A purchase must be a positive amount.", field="amount")
    external_id = (external_id or "").strip()
    if not external_id:
        raise ApplicationError("A purchase needs a payment reference.", field="external_id")
    balance = lock_balance(license)
    draft = EntryDraft(
        kind=Kind.PURCHASE,
        amount=amount,
        occurred_at=occurred_at or timezone.now(),
        external_id=external_id,
        description=description or "Credit purchase",
        created_by_id=acting_user.pk if acting_user else None,
    )
    result = _post_entries(license=license, balance=balance, drafts=[draft])
    entry = LedgerEntry.objects.for_license(license).get(external_id=external_id)
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
        _after_balance_change(license, balance)
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


# A record becomes one charge per service it used, in this order; the first carries the
# API call. A call that used nothing (a failed call) is one zero charge on ai_data.
_USAGE_PARTS = (
    (Service.AI_DATA, "input_tokens", "tokens"),
    (Service.AI_DATA_CACHED, "cached_tokens", "tokens"),
    (Service.AI_DATA_COMPLETION, "completion_tokens", "tokens"),
    (Service.AI_IMAGES, "images", "images"),
)


def usage_entry_external_id(record_id: str, service: str) -> str:
    return f"{record_id}:{service}"


def _usage_drafts(record: UsageRecord, prices: PriceBook) -> list[EntryDraft]:
    label = " ".join(
        p for p in (record.endpoint, f"({record.request_id})" if record.request_id else "") if p
    )
    if record.status != "success":
        label = f"{label} [{record.status}]".strip()
    drafts = []
    for service, attr, unit in _USAGE_PARTS:
        quantity = getattr(record, attr)
        if quantity <= 0:
            continue
        unit_price = prices.unit_price(service, record.occurred_at)
        drafts.append(
            EntryDraft(
                kind=Kind.USAGE,
                service=service,
                amount=-charge_for(quantity, unit_price),
                tokens=quantity if unit == "tokens" else 0,
                images=quantity if unit == "images" else 0,
                api_calls=0 if drafts else 1,
                description=label[:500],
                occurred_at=record.occurred_at,
                external_id=usage_entry_external_id(record.id, service),
            )
        )
    if not drafts:
        drafts.append(
            EntryDraft(
                kind=Kind.USAGE,
                service=Service.AI_DATA,
                amount=Decimal("0.000000"),
                api_calls=1,
                description=label[:500],
                occurred_at=record.occurred_at,
                external_id=usage_entry_external_id(record.id, Service.AI_DATA),
            )
        )
    return drafts


@transaction.atomic
def usage_record_batch(*, license: License, records: Sequence[UsageRecord]) -> UsageBatchResult:
    """Charge a batch of upstream usage records, each at most once.

    Records already in the ledger (from this batch or an earlier one) are skipped and
    counted. Usage is recorded even when it takes the balance below zero: the upstream
    already served the call. Raises ApplicationError if a record has no price in effect.
    """
    result = UsageBatchResult()
    balance = lock_balance(license)
    prices = price_book_get()
    seen: set[str] = set()
    drafts: list[EntryDraft] = []
    for record in records:
        if record.id in seen:
            result.records_duplicate += 1
            continue
        seen.add(record.id)
        drafts.extend(_usage_drafts(record, prices))
    posted = _post_entries(license=license, balance=balance, drafts=drafts)
    charged_records = {eid.rsplit(":", 1)[0] for eid in posted.inserted_external_ids}
    result.records_charged = len(charged_records)
    result.records_duplicate += len(seen) - len(charged_records)
    result.entries_created = len(posted.inserted_external_ids)
    inserted = set(posted.inserted_external_ids)
    result.amount = sum((d.amount for d in drafts if d.external_id in inserted), Decimal("0"))
    result.balance_before, result.balance_after = posted.balance_before, posted.balance_after
    if inserted:
        _log_money(
            "money usage",
            license=license.key,
            records=result.records_charged,
            entries=result.entries_created,
            amount=result.amount,
            skipped=result.records_duplicate,
            balance=result.balance_after,
        )
        _after_balance_change(license, balance)
    return result


# --- refunds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundResult:
    entry: LedgerEntry
    created: bool


def refundable_amount(entry: LedgerEntry) -> Decimal:
    """What is still refundable on a usage charge (its size less refunds already issued)."""
    from billing.selectors import refunded_total_for_entry

    return quantize_money(-entry.amount - refunded_total_for_entry(entry))


@transaction.atomic
def refund_issue(
    *,
    acting_user: User,
    license: License,
    amount: Decimal,
    reason: str,
    idempotency_key: str,
    refund_of: LedgerEntry | None = None,
) -> RefundResult:
    """Refund part or all of a usage charge, or credit the license as goodwill.

    The refunds of a charge never exceed it: the check runs with the license's balance
    row locked, so two refunds issued at the same instant are decided one after another.
    The same idempotency key twice records one refund.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the refund is issued.", field="reason")
    amount = _exact_amount(amount)
    if amount <= 0:
        raise ApplicationError("A refund must be a positive amount.", field="amount")
    if not idempotency_key:
        raise ApplicationError("A refund needs an idempotency key.")
    balance = lock_balance(license)
    external_id = f"refund:{idempotency_key}"
    existing = LedgerEntry.objects.for_license(license).filter(external_id=external_id).first()
    if existing is not None:
        # A double submit of the same form: the refund it asked for is already there.
        # The same key for a different refund is a mistake, not a repeat: say so.
        if (
            existing.kind != Kind.REFUND
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
            raise ApplicationError("Only a usage charge on this license can be refunded.")
        remaining = refundable_amount(refund_of)
        if amount > remaining:
            raise ApplicationError(
                f"At most ${remaining} of this charge is still refundable.", field="amount"
            )
        service = refund_of.service
    description = f"Refund of entry #{refund_of.pk}" if refund_of is not None else "Goodwill credit"
    draft = EntryDraft(
        kind=Kind.REFUND,
        service=service,
        amount=amount,
        occurred_at=timezone.now(),
        external_id=external_id,
        description=description,
        refund_of_id=refund_of.pk if refund_of is not None else None,
        reason=reason,
        created_by_id=acting_user.pk,
    )
    posted = _post_entries(license=license, balance=balance, drafts=[draft])
    entry = LedgerEntry.objects.for_license(license).get(external_id=external_id)
    audit_record(
        actor=acting_user,
        license=license,
        action="refund.issue",
        target=f"ledger entry #{entry.pk}",
        changes={
            "amount": str(amount),
            "refund_of": refund_of.pk if refund_of is not None else None,
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
    _after_balance_change(license, balance)
    return RefundResult(entry, True)


# --- prices ----------------------------------------------------------------------------


def price_validate(
    *, service: str, unit_price: Decimal, effective_from: datetime, now: datetime
) -> None:
    """Raise ApplicationError (naming the field) unless this is a valid new price."""
    if service not in Service.values:
        raise ApplicationError(f"Unknown service {service!r}.", field="service")
    unit_price = Decimal(unit_price)
    if not unit_price.is_finite() or unit_price < 0:
        raise ApplicationError("A price is zero or more.", field="unit_price")
    if unit_price >= Decimal(10) ** (PRICE_MAX_DIGITS - PRICE_PLACES):
        raise ApplicationError("That unit price is too large.", field="unit_price")
    if unit_price != unit_price.quantize(Decimal(1).scaleb(-PRICE_PLACES)):
        raise ApplicationError(
            f"A unit price has at most {PRICE_PLACES} decimal places.", field="unit_price"
        )
    if effective_from < now:
        raise ApplicationError(
            "A new price starts now or later, never in the past.", field="effective_from"
        )
    if Price.objects.filter(service=service, effective_from=effective_from).exists():
        raise ApplicationError(
            "A price for this service already starts at that moment.", field="effective_from"
        )


@transaction.atomic
def price_add(
    *,
    acting_user: User,
    service: str,
    unit_price: Decimal,
    effective_from: datetime | None = None,
) -> Price:
    """Add a price for a service from a moment on (now when not given).

    Prices are never edited: a change is a new row. The moment may not be in the past,
    because usage from before it may already be charged at the old price; a price that
    reached back would charge late-synced records of that period differently.
    """
    if isinstance(unit_price, float):
        raise TypeError("prices must never be floats")
    now = timezone.now()
    effective_from = effective_from or now
    price_validate(service=service, unit_price=unit_price, effective_from=effective_from, now=now)
    unit_price = Decimal(unit_price)
    price = Price.objects.create(
        service=service,
        unit_price=unit_price,
        effective_from=effective_from,
        created_by=acting_user,
    )
    audit_record(
        actor=acting_user,
        action="price.add",
        target=f"price #{price.pk} {service}",
        changes={
            "service": service,
            "unit_price": str(unit_price),
            "effective_from": effective_from.isoformat(),
        },
    )
    logger.info(
        "price added service=%s unit_price=%s from=%s by=%s",
        service,
        unit_price,
        effective_from.isoformat(),
        acting_user.pk,
    )
    return price


def _after_balance_change(license: License, balance: LicenseBalance) -> None:
    """What follows a balance change, still inside its transaction with the row locked."""
    balance_alert_check(license=license, balance=balance)


_REBUILD_ROLLUPS_SQL = """
INSERT INTO billing_dailyrollup (license_id, day, kind, service, amount, tokens, images, api_calls, entries)
SELECT license_id, (occurred_at AT TIME ZONE %(tz)s)::date, kind, service,
       sum(amount), sum(tokens), sum(images), sum(api_calls), count(*)
FROM billing_ledgerentry
WHERE license_id = %(license_id)s
GROUP BY 1, 2, 3, 4
"""


@transaction.atomic
def rollups_rebuild(*, license: License) -> int:
    """Recompute a license's daily rollups from its entries, in its current timezone.

    Returns the number of rollup rows written. One pass over the license's entries, with
    its balance row locked, so no posting interleaves (6 s for 10 million entries here).
    """
    lock_balance(license)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_dailyrollup WHERE license_id = %s", [license.pk])
        cursor.execute(_REBUILD_ROLLUPS_SQL, {"tz": license.timezone, "license_id": license.pk})
        rows = cursor.rowcount
    logger.info(
        "rollups rebuilt license=%s timezone=%s rows=%d", license.key, license.timezone, rows
    )
    return rows


_REBUILD_TOTALS_SQL = (
    """
UPDATE billing_licensebalance AS b SET
    balance = s.amount, total_purchased = s.purchased, total_spent = s.spent,
    total_refunded = s.refunded, api_calls = s.api_calls, input_tokens = s.input_tokens,
    cached_tokens = s.cached_tokens, completion_tokens = s.completion_tokens,
    images = s.images, images_spent = s.images_spent, entries = s.entries,
    updated_at = %(now)s
FROM (
    SELECT """
    + _SUMS_OF_ENTRIES
    + """
    FROM billing_ledgerentry WHERE license_id = %(license_id)s
) AS s
WHERE b.license_id = %(license_id)s
"""
)


@transaction.atomic
def license_totals_rebuild(*, license: License) -> LicenseBalance:
    """Recompute a license's balance, totals and rollups from its entries.

    For bulk loads that bypass `_post_entries` (generate_usage); normal operation never
    needs it, because every posting keeps them exact.
    """
    lock_balance(license)
    with connection.cursor() as cursor:
        cursor.execute(_REBUILD_TOTALS_SQL, {"license_id": license.pk, "now": timezone.now()})
    rollups_rebuild(license=license)
    return LicenseBalance.objects.for_license(license).get()
