"""Ledger history for dashboard tests, made only through billing.services.

Nothing here inserts a ledger row directly: purchases go through purchase_record, usage
through usage_record_batch (the sync's path) and refunds through refund_issue, so rollups
and totals are exactly what production would hold.
"""

import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

from accounts.models import License, User
from billing.models import LedgerEntry, Service
from billing.services import UsageRecord, purchase_record, refund_issue, usage_record_batch

_ids = count(1)

ENDPOINTS = ("/v1/chat/completions", "/v1/images/analyze", "/v1/embeddings", "/v1/images/generate")


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
) -> UsageRecord:
    n = next(_ids)
    return UsageRecord(
        id=record_id or f"rec-{n:08d}",
        occurred_at=at,
        input_tokens=input_tokens,
        cached_tokens=cached_tokens,
        completion_tokens=completion_tokens,
        images=images,
        request_id=f"req_{n:08d}",
        endpoint=endpoint,
        status=status,
    )


def charge(license: License, *records: UsageRecord):
    return usage_record_batch(license=license, records=list(records))


def buy(license: License, amount: str | Decimal, at: datetime, reference: str | None = None):
    return purchase_record(
        license=license,
        amount=Decimal(amount),
        external_id=reference or f"pay-{next(_ids):08d}",
        description="Credit purchase (card)",
        occurred_at=at,
    ).entry


def refund(
    license: License, entry: LedgerEntry, amount: str | Decimal, by: User, reason: str = "test"
):
    return refund_issue(
        acting_user=by,
        license=license,
        amount=Decimal(amount),
        reason=reason,
        idempotency_key=f"refund-{next(_ids):08d}",
        refund_of=entry,
    ).entry


def realistic_usage(
    *, now: datetime, days: int, calls_per_day: int = 3, seed: int = 7, skip_every: int = 6
) -> list[UsageRecord]:
    """Usage records over the `days` days before `now`: all four services, quiet days among
    them (every `skip_every`-th day has no calls), a failed call now and then."""
    rng = random.Random(seed)
    records = []
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


TEXT = {Service.AI_DATA, Service.AI_DATA_CACHED, Service.AI_DATA_COMPLETION}


class LedgerFigures:
    """Every dashboard figure, recomputed from the license's ledger rows."""

    def __init__(self, license, now: datetime):
        tz = ZoneInfo(license.timezone)
        self.entries = list(LedgerEntry.objects.for_license(license))
        usage = [e for e in self.entries if e.kind == "usage"]
        self.balance = sum((e.amount for e in self.entries), Decimal(0))
        self.total_purchased = sum((e.amount for e in self.entries if e.kind == "purchase"), 0)
        self.total_refunded = sum((e.amount for e in self.entries if e.kind == "refund"), 0)
        self.total_spent = -sum((e.amount for e in usage), Decimal(0))
        self.api_calls = sum(e.api_calls for e in self.entries)
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
