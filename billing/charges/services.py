"""Usage charges: a batch of upstream usage records charged once each, at the price in
effect at each record's time, through the posting engine (billing.ledger.usage)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from accounts.models import License
from billing.aftermath import money_log, money_moved
from billing.events.services import money_text, time_text
from billing.events.types import USAGE_RECORDED
from billing.ledger.posting import lock_balance
from billing.ledger.usage import USAGE_COUNTS, USAGE_PARTS, UsageDraft, post_usage, usage_record_id
from billing.limits.holds import gate_holds_release
from billing.prices.selectors import PriceBook, price_book_get


class UsageRecord(NamedTuple):
    """One upstream API call, already validated. A named tuple, as EntryDraft: a push or a
    sync page makes a thousand, and a frozen dataclass took three times as long to create."""

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
    time (a sync's records were checked so by usage.services.records.record_parse)."""
    for record in records:
        for part in USAGE_PARTS:
            if getattr(record, part.count) > 0:
                prices.unit_price(part.service, record.occurred_at)


@dataclass(frozen=True)
class UsageDrafts:
    """A batch of usage records as the posting statement takes them, checked against one
    price book: the half of usage_record_batch that needs no database, so a sync can do it
    for the next page while this one is posted."""

    records: Sequence[UsageRecord]
    prices: PriceBook
    drafts: list[UsageDraft]  # each distinct record once (a repeated id is charged once)
    quantity: int  # the drafts' quantities added up: a bound on what they are charged


# A record's counts, in USAGE_COUNTS' order.
_counts = attrgetter(*USAGE_COUNTS)


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
        quantity += sum(_counts(record))
    return UsageDrafts(records, prices, drafts, quantity)


@transaction.atomic
def usage_record_batch(
    *, license: License, records: Sequence[UsageRecord] | UsageDrafts
) -> UsageBatchResult:
    """Charge a batch of upstream usage records, each at most once.

    Records already in the ledger (from this batch or an earlier one) are skipped and
    counted. Usage is recorded even when it takes the balance below zero: the upstream
    already served the call. Raises ApplicationError if a record has no price in effect.
    The gate's holds for the batch's request ids end with it.

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
    # The gate's holds for these calls end with their usage, in this transaction.
    gate_holds_release(
        license=license, request_ids=[d.request_id for d in drafts], at=timezone.now()
    )
    result.entries_created = posted.entries_inserted
    if posted.inserted_external_ids is None:
        # Every entry was new (a page seen for the first time): spare a sync's page the
        # per-entry work of finding out which were.
        result.records_charged = len(drafts)
        latest_at = max((d.occurred_at for d in drafts), default=None)
    else:
        charged = {usage_record_id(eid) for eid in posted.inserted_external_ids}
        result.records_charged = len(charged)
        latest_at = max((d.occurred_at for d in drafts if d.record_id in charged), default=None)
    result.records_duplicate = len(records.records) - result.records_charged
    # Usage entries are all the batch posted: what they came to is what the balance moved.
    result.amount = posted.balance_after - posted.balance_before
    result.balance_before, result.balance_after = posted.balance_before, posted.balance_after
    # Entries were created, so some record was charged and latest_at is its time.
    if result.entries_created and latest_at is not None:
        money_log(
            "money usage",
            license=license.key,
            records=result.records_charged,
            entries=result.entries_created,
            amount=result.amount,
            skipped=result.records_duplicate,
            balance=result.balance_after,
        )
        money_moved(
            USAGE_RECORDED,
            license,
            balance,
            data={
                "records": result.records_charged,
                "entries": result.entries_created,
                "amount": money_text(result.amount),
                "balance_before": money_text(result.balance_before),
                "latest_at": time_text(latest_at),
            },
            latest_at=latest_at,
            lowered=True,
        )
    return result
