"""Ledger test data and ledger checks, shared by every test.

Making data: nothing here inserts a ledger row directly. Purchases go through
purchase_record, usage through usage_record_batch (the sync's path) and refunds through
refund_issue, so rollups and totals are exactly what production would hold.

Checking it: the sums are computed here with plain aggregates, independently of the code
under test, and compared with what the portal stored (balance totals, rollups) or with
what the upstream says it served.
"""

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import License, User
from billing.charges.services import UsageBatchResult, UsageRecord, usage_record_batch
from billing.ledger.totals import TOTAL_NAMES, totals_of
from billing.ledger.usage import usage_external_id
from billing.models import (
    CreditGrant,
    DailyRollup,
    EndpointDailyRollup,
    GrantDailyRollup,
    LedgerEntry,
    LicenseBalance,
    Service,
)
from billing.purchases.services import PurchaseResult, purchase_record
from billing.refunds.services import refund_issue
from usage.models import SyncState

# A fixed moment for tests that do not care when (in June 2025, away from month edges).
T0 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
USAGE = LedgerEntry.Kind.USAGE
TEXT = {Service.AI_DATA, Service.AI_DATA_CACHED, Service.AI_DATA_COMPLETION}
ENDPOINTS = ("/v1/chat/completions", "/v1/images/analyze", "/v1/embeddings", "/v1/images/generate")

_ids = count(1)

# A rollup's figures: (amount, tokens, images, api_calls, entries).
Sums = tuple[Decimal, int, int, int, int]
K = TypeVar("K")


# --- making ledger data ------------------------------------------------------------------


def buy(
    license: License,
    amount: str | Decimal,
    ref: str | None = None,
    *,
    at: datetime | None = None,
    description: str = "",
    acting_user: User | None = None,
) -> PurchaseResult:
    """Record a purchase (payment reference `ref`, made up when not given); the service's
    PurchaseResult (.entry, .created)."""
    return purchase_record(
        license=license,
        amount=Decimal(amount),
        external_id=ref or f"pay-{next(_ids):08d}",
        description=description,
        occurred_at=at,
        acting_user=acting_user,
    )


def record(
    at: datetime,
    *,
    input_tokens: int = 0,
    cached_tokens: int = 0,
    completion_tokens: int = 0,
    images: int = 0,
    endpoint: str = "/v1/chat/completions",
    status: str = "success",
    record_id: str | None = None,
    request_id: str | None = None,
) -> UsageRecord:
    """One upstream record (one API call); ids are made up when not given."""
    n = next(_ids)
    return UsageRecord(
        id=record_id or f"rec-{n:08d}",
        occurred_at=at,
        input_tokens=input_tokens,
        cached_tokens=cached_tokens,
        completion_tokens=completion_tokens,
        images=images,
        request_id=f"req_{n:08d}" if request_id is None else request_id,
        endpoint=endpoint,
        status=status,
    )


def charge(license: License, *records: UsageRecord) -> UsageBatchResult:
    """Charge upstream records, as the sync does."""
    return usage_record_batch(license=license, records=list(records))


def record_usage(
    license: License,
    record_id: str,
    *,
    at: datetime = T0,
    request_id: str = "",
    input_tokens: int = 0,
    cached_tokens: int = 0,
    completion_tokens: int = 0,
    images: int = 0,
) -> UsageBatchResult:
    """Charge one upstream record of these quantities."""
    return charge(
        license,
        record(
            at,
            record_id=record_id,
            endpoint="/v1/chat",
            request_id=request_id,
            input_tokens=input_tokens,
            cached_tokens=cached_tokens,
            completion_tokens=completion_tokens,
            images=images,
        ),
    )


def spend_images(license: License, images: int, *, at: datetime | None = None) -> UsageBatchResult:
    """Usage of `images` images ($0.0001 each at the default price)."""
    return charge(license, record(at or timezone.now(), images=images, endpoint="", request_id=""))


def spend(
    license: License, dollars: str | Decimal, *, at: datetime | None = None
) -> UsageBatchResult:
    """Usage worth exactly `dollars` (a multiple of $0.0001, the default image price)."""
    images = Decimal(dollars) / Decimal("0.0001")
    assert images == images.to_integral_value()
    return charge(
        license,
        record(at or timezone.now(), images=int(images), endpoint="", request_id=""),
    )


def refund(
    license: License,
    entry: LedgerEntry | None,
    amount: str | Decimal,
    by: User,
    reason: str = "test",
) -> LedgerEntry:
    """Refund part of `entry`, or (None) credit the license; the refund's entry."""
    return refund_issue(
        acting_user=by,
        license=license,
        amount=Decimal(amount),
        reason=reason,
        idempotency_key=f"refund-{next(_ids):08d}",
        refund_of=entry,
    ).entry


def usage_entry(license: License, record_id: str, service: str = "ai_data") -> LedgerEntry:
    return LedgerEntry.objects.for_license(license).get(
        external_id=usage_external_id(record_id, service)
    )


def realistic_usage(
    *, now: datetime, days: int, calls_per_day: int = 3, seed: int = 7, skip_every: int = 6
) -> list[UsageRecord]:
    """Usage records over the `days` days before `now`: all four services, quiet days among
    them (every `skip_every`-th day has no calls), a failed call now and then."""
    rng = random.Random(seed)
    records: list[UsageRecord] = []
    for day in range(days, -1, -1):
        if skip_every and day % skip_every == 3:
            continue
        for _ in range(calls_per_day):
            at = now - timedelta(days=day, minutes=rng.randint(0, 23 * 60))
            if at > now:
                continue
            kind = rng.random()
            if kind < 0.55:
                rec = record(
                    at,
                    input_tokens=rng.randint(2_000, 400_000),
                    cached_tokens=rng.choice((0, 0, rng.randint(1_000, 900_000))),
                    completion_tokens=rng.randint(500, 250_000),
                    endpoint=ENDPOINTS[0],
                )
            elif kind < 0.9:
                rec = record(at, images=rng.randint(1, 3_000), endpoint=ENDPOINTS[1])
            elif kind < 0.97:
                rec = record(at, input_tokens=rng.randint(1_000, 90_000), endpoint=ENDPOINTS[2])
            else:
                rec = record(at, endpoint=ENDPOINTS[3], status="error")
            records.append(rec)
    return records


# --- checking it against its own entries ---------------------------------------------------


def ledger_sums(license: License) -> dict[str, Decimal | int]:
    """What LicenseBalance should hold: each total of billing.ledger.totals summed in Python over
    the license's entries (the posting statement sums them in SQL)."""
    return totals_of(LedgerEntry.objects.for_license(license).iterator())


def stored_totals(license: License) -> dict[str, Decimal | int]:
    balance = LicenseBalance.objects.for_license(license).first()
    if balance is None:
        return dict.fromkeys(TOTAL_NAMES, 0)
    return {name: getattr(balance, name) for name in TOTAL_NAMES}


def _sums_by(
    license: License,
    entries: QuerySet[LedgerEntry],
    key: Callable[[LedgerEntry, date], K],
) -> dict[K, Sums]:
    """{key(entry, local day): (amount, tokens, images, api_calls, entries)} of `entries`."""
    tz = license.tzinfo
    sums: dict[K, Sums] = {}
    for e in entries.iterator():
        k = key(e, e.occurred_at.astimezone(tz).date())
        amount, tokens, images, api_calls, n = sums.get(k, (Decimal(0), 0, 0, 0, 0))
        sums[k] = (
            amount + e.amount,
            tokens + e.tokens,
            images + e.images,
            api_calls + e.api_calls,
            n + 1,
        )
    return sums


def rollups_from_entries(license: License) -> dict[tuple[date, str, str], Sums]:
    """{(local day, kind, service): (amount, tokens, images, api_calls, entries)} from entries."""
    entries = LedgerEntry.objects.for_license(license)
    return _sums_by(license, entries, lambda e, day: (day, e.kind, e.service))


def rollups_stored(license: License) -> dict[tuple[date, str, str], Sums]:
    return {
        (r.day, r.kind, r.service): (r.amount, r.tokens, r.images, r.api_calls, r.entries)
        for r in DailyRollup.objects.for_license(license)
    }


def endpoint_rollups_from_entries(license: License) -> dict[tuple[date, str, str], Sums]:
    """{(local day, endpoint, service): (amount, tokens, images, api_calls, entries)} of the
    license's usage entries."""
    entries = LedgerEntry.objects.for_license(license).filter(kind=USAGE)
    return _sums_by(license, entries, lambda e, day: (day, e.endpoint, e.service))


def endpoint_rollups_stored(license: License) -> dict[tuple[date, str, str], Sums]:
    return {
        (r.day, r.endpoint, r.service): (r.amount, r.tokens, r.images, r.api_calls, r.entries)
        for r in EndpointDailyRollup.objects.for_license(license)
    }


def over_refunded_charges(license: License) -> list[dict[str, Any]]:
    """Usage charges (or purchases) whose refunds add up to more than them (must be empty).
    A refund of a purchase is negative: sizes are compared."""
    rows = (
        LedgerEntry.objects.for_license(license)
        .filter(kind="refund", refund_of__isnull=False)
        .values("refund_of_id", "refund_of__amount")
        .annotate(refunded=Sum("amount"), n=Count("id"))
    )
    return [r for r in rows if abs(r["refunded"]) > abs(r["refund_of__amount"])]


def grant_sums(license: License) -> dict[str, dict[str, Decimal]]:
    """{kind: {granted, consumed, refunded, expired}} over the license's grants."""
    sums: dict[str, dict[str, Decimal]] = {}
    for g in CreditGrant.objects.for_license(license):
        kind = sums.setdefault(g.kind, defaultdict(Decimal))
        kind["granted"] += g.amount
        kind["consumed"] += g.consumed
        kind["refunded"] += g.refunded
        kind["expired"] += g.expired
    return {k: dict(v) for k, v in sums.items()}


def grant_rollup_sums(license: License) -> dict[str, dict[str, Decimal]]:
    """The same sums over the license's GrantDailyRollup rows."""
    sums: dict[str, dict[str, Decimal]] = {}
    for r in GrantDailyRollup.objects.for_license(license):
        kind = sums.setdefault(r.kind, defaultdict(Decimal))
        for name in ("granted", "consumed", "refunded", "expired"):
            kind[name] += getattr(r, name)
    return {k: dict(v) for k, v in sums.items()}


def assert_grants_consistent(license: License) -> None:
    """Invariant 13 for one license, from plain reads of the grants and entries: the
    remainders add up to the balance when it is positive (zero otherwise); each purchase is
    one paid grant and each credit one promotional grant of its amount; each expiry entry
    is its grant's one expiry of exactly what expired; the grant rollups add up to the
    grants."""
    entries = list(LedgerEntry.objects.for_license(license))
    grants = list(CreditGrant.objects.for_license(license))
    balance = sum((e.amount for e in entries), Decimal(0))
    remaining = sum((g.amount - g.consumed - g.refunded - g.expired for g in grants), Decimal(0))
    assert remaining == max(balance, Decimal(0))
    assert all(g.remaining == g.amount - g.consumed - g.refunded - g.expired >= 0 for g in grants)
    by_entry = {g.entry_id: g for g in grants}
    for e in entries:
        brings_credit = e.kind in ("purchase", "credit") or (
            e.kind == "refund" and e.amount > 0 and e.service == ""
        )
        if brings_credit:
            grant = by_entry[e.id]
            assert (grant.kind, grant.amount) == (
                "paid" if e.kind == "purchase" else "promotional",
                e.amount,
            )
    expiries = [e for e in entries if e.kind == "expiry"]
    expired_grants = {g.expiry_entry_id: g for g in grants if g.expiry_entry_id is not None}
    assert sorted(expired_grants) == sorted(e.id for e in expiries)
    for e in expiries:
        grant = expired_grants[e.id]
        assert e.external_id == f"expiry:{grant.pk}" and e.amount == -grant.expired < 0
        assert grant.expired_at is not None
    assert grant_rollup_sums(license) == grant_sums(license)


def assert_ledger_consistent(license: License) -> None:
    """Invariants 1, 4 and 13 for one license: totals and rollups (by service, and usage by
    endpoint) equal their entries' sums, and the credit grants add up to the balance."""
    license.refresh_from_db()
    assert stored_totals(license) == ledger_sums(license)
    assert rollups_stored(license) == rollups_from_entries(license)
    assert endpoint_rollups_stored(license) == endpoint_rollups_from_entries(license)
    assert over_refunded_charges(license) == []
    assert_grants_consistent(license)


class LedgerFigures:
    """Every dashboard figure, recomputed from the license's ledger rows."""

    def __init__(self, license: License, now: datetime):
        tz = ZoneInfo(license.timezone)
        self.entries = list(LedgerEntry.objects.for_license(license))
        usage = [e for e in self.entries if e.kind == "usage"]
        self.balance = sum((e.amount for e in self.entries), Decimal(0))
        # Total Purchased is gross; a refund of a card purchase (negative) is beside it.
        self.total_purchased = sum((e.amount for e in self.entries if e.kind == "purchase"), 0)
        self.total_purchase_refunded = -sum(
            (e.amount for e in self.entries if e.kind == "refund" and e.amount < 0), 0
        )
        # Refunds of usage charges (they carry the charge's service).
        self.total_refunded = sum(
            (e.amount for e in self.entries if e.kind == "refund" and e.service != ""), 0
        )
        self.total_spent = -sum((e.amount for e in usage), Decimal(0))
        # Credits, and goodwill recorded as a refund of nothing before the credit kind.
        self.total_credited = sum(
            (
                e.amount
                for e in self.entries
                if e.kind == "credit" or (e.kind == "refund" and e.service == "" and e.amount > 0)
            ),
            0,
        )
        self.total_expired = -sum((e.amount for e in self.entries if e.kind == "expiry"), 0)
        self.api_calls = sum(e.api_calls for e in self.entries)
        # The guide's Total Transactions: ledger lines (a call charged for two services is
        # two), as All transactions and the CSV list them; API calls are counted apart.
        self.transactions = len(self.entries)
        self.tokens = sum(e.tokens for e in usage)
        self.images = sum(e.images for e in usage)
        self.image_spent = -sum((e.amount for e in usage if e.service == "ai_images"), Decimal(0))
        self.text_spent = -sum((e.amount for e in usage if e.service in TEXT), Decimal(0))
        self.per_day: dict[date, Decimal] = defaultdict(Decimal)
        self.per_month: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
        for e in usage:
            local = e.occurred_at.astimezone(tz)
            self.per_day[local.date()] -= e.amount
            self.per_month[(local.year, local.month)] -= e.amount
        self.today = now.astimezone(tz).date()
        self.newest = sorted(self.entries, key=lambda e: (e.occurred_at, e.id), reverse=True)


# --- checking it against the upstream ------------------------------------------------------


def ledger_usage(license: License) -> dict[str, Decimal | int]:
    """What the ledger says the license used, summed from its entries."""
    entries = LedgerEntry.objects.for_license(license).filter(kind=USAGE)
    sums = entries.aggregate(
        records=Sum("api_calls"),
        input_tokens=Sum("tokens", filter=Q(service="ai_data")),
        cached_tokens=Sum("tokens", filter=Q(service="ai_data_cached")),
        completion_tokens=Sum("tokens", filter=Q(service="ai_data_completion")),
        images=Sum("images"),
        amount=Sum("amount"),
        entries=Count("id"),
    )
    return {name: value or 0 for name, value in sums.items()}


def assert_ledger_matches_upstream(license: License, summary: dict[str, int]) -> None:
    """The ledger, the balance totals and the rollups all equal the upstream's summary."""
    ledger = ledger_usage(license)
    upstream = {
        name: summary[name]
        for name in ("records", "input_tokens", "cached_tokens", "completion_tokens", "images")
    }
    assert {name: ledger[name] for name in upstream} == upstream
    balance = LicenseBalance.objects.for_license(license).get()
    assert balance.api_calls == summary["records"]
    assert balance.input_tokens == summary["input_tokens"]
    assert balance.cached_tokens == summary["cached_tokens"]
    assert balance.completion_tokens == summary["completion_tokens"]
    assert balance.images == summary["images"]
    assert balance.total_spent == -ledger["amount"]
    rollups = (
        DailyRollup.objects.for_license(license)
        .filter(kind=USAGE)
        .aggregate(amount=Sum("amount"), calls=Sum("api_calls"), entries=Sum("entries"))
    )
    assert rollups == {
        "amount": ledger["amount"],
        "calls": ledger["records"],
        "entries": ledger["entries"],
    }


def ledger_charges(license: License) -> set[tuple[str, Decimal, int, int, datetime]]:
    """Every usage charge as (external id, amount, tokens, images, occurred_at)."""
    return set(
        LedgerEntry.objects.for_license(license)
        .filter(kind=USAGE)
        .values_list("external_id", "amount", "tokens", "images", "occurred_at")
    )


def cursor_of(license: License) -> str:
    """The sync's committed cursor for the license ("" before its first page)."""
    return SyncState.objects.for_license(license).values_list("cursor", flat=True).first() or ""
