"""Shared helpers of the billing tests: recording money through the real services and
checking the invariants with sums computed here, independently of the code under test."""

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Count, Sum

from billing.models import DailyRollup, LedgerEntry, LicenseBalance
from billing.services import UsageRecord, purchase_record, usage_record_batch

T0 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def record_usage(license, record_id, *, at=T0, **quantities):
    """Charge one upstream record (input_tokens=, cached_tokens=, completion_tokens=, images=)."""
    return usage_record_batch(
        license=license,
        records=[UsageRecord(id=record_id, occurred_at=at, endpoint="/v1/chat", **quantities)],
    )


def usage_entry(license, record_id, service="ai_data"):
    return LedgerEntry.objects.for_license(license).get(external_id=f"{record_id}:{service}")


def buy(license, amount, ref, **kwargs):
    return purchase_record(license=license, amount=Decimal(amount), external_id=ref, **kwargs)


def ledger_sums(license) -> dict:
    """What LicenseBalance should hold, computed from the entries with plain aggregates."""
    entries = LedgerEntry.objects.for_license(license)

    def total(qs, field="amount"):
        return qs.aggregate(s=Sum(field))["s"] or 0

    return {
        "balance": total(entries),
        "total_purchased": total(entries.filter(kind="purchase")),
        "total_spent": -total(entries.filter(kind="usage")),
        "total_refunded": total(entries.filter(kind="refund")),
        "api_calls": total(entries, "api_calls"),
        "input_tokens": total(entries.filter(kind="usage", service="ai_data"), "tokens"),
        "cached_tokens": total(entries.filter(kind="usage", service="ai_data_cached"), "tokens"),
        "completion_tokens": total(
            entries.filter(kind="usage", service="ai_data_completion"), "tokens"
        ),
        "images": total(entries.filter(kind="usage"), "images"),
        "images_spent": -total(entries.filter(kind="usage", service="ai_images")),
        "entries": entries.count(),
    }


def stored_totals(license) -> dict:
    balance = LicenseBalance.objects.for_license(license).first()
    fields = [
        "balance", "total_purchased", "total_spent", "total_refunded", "api_calls",
        "input_tokens", "cached_tokens", "completion_tokens", "images", "images_spent", "entries",
    ]  # fmt: skip
    if balance is None:
        return dict.fromkeys(fields, 0)
    return {f: getattr(balance, f) for f in fields}


def rollups_from_entries(license) -> dict:
    """{(local day, kind, service): (amount, tokens, images, api_calls, entries)} from entries."""
    tz = license.tzinfo
    sums = defaultdict(lambda: [Decimal(0), 0, 0, 0, 0])
    for e in LedgerEntry.objects.for_license(license).iterator():
        key = (e.occurred_at.astimezone(tz).date(), e.kind, e.service)
        s = sums[key]
        s[0] += e.amount
        s[1] += e.tokens
        s[2] += e.images
        s[3] += e.api_calls
        s[4] += 1
    return {k: tuple(v) for k, v in sums.items()}


def rollups_stored(license) -> dict:
    return {
        (r.day, r.kind, r.service): (r.amount, r.tokens, r.images, r.api_calls, r.entries)
        for r in DailyRollup.objects.for_license(license)
    }


def over_refunded_charges(license) -> list:
    """Usage charges whose refunds add up to more than the charge (must be empty)."""
    rows = (
        LedgerEntry.objects.for_license(license)
        .filter(kind="refund", refund_of__isnull=False)
        .values("refund_of_id", "refund_of__amount")
        .annotate(refunded=Sum("amount"), n=Count("id"))
    )
    return [r for r in rows if r["refunded"] > -r["refund_of__amount"]]


def assert_ledger_consistent(license) -> None:
    """Invariant 1 and 4 for one license: totals and rollups equal their entries' sums."""
    license.refresh_from_db()
    assert stored_totals(license) == ledger_sums(license)
    assert rollups_stored(license) == rollups_from_entries(license)
    assert over_refunded_charges(license) == []
