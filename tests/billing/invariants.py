"""Independent recomputation of what the ledger says, for tests to compare against."""

from collections import defaultdict
from decimal import Decimal

from billing.models import DailyRollup, LedgerEntry, LicenseBalance


def assert_license_consistent(license) -> None:
    """Balance and totals equal the sums of the entries; rollups equal the entries they cover."""
    entries = list(LedgerEntry.objects.for_license(license))
    balance = LicenseBalance.objects.for_license(license).get()
    assert balance.balance == sum((e.amount for e in entries), Decimal("0"))
    assert balance.entries == len(entries)
    assert balance.total_purchased == sum(
        (e.amount for e in entries if e.kind == "purchase"), Decimal("0")
    )
    assert balance.total_spent == -sum(
        (e.amount for e in entries if e.kind == "usage"), Decimal("0")
    )
    assert balance.total_refunded == sum(
        (e.amount for e in entries if e.kind == "refund"), Decimal("0")
    )
    assert balance.api_calls == sum(e.api_calls for e in entries)
    for field, service in (("input_tokens", "ai_data"), ("cached_tokens", "ai_data_cached"),
                           ("completion_tokens", "ai_data_completion")):  # fmt: skip
        assert getattr(balance, field) == sum(
            e.tokens for e in entries if e.kind == "usage" and e.service == service
        )
    assert balance.images == sum(e.images for e in entries if e.kind == "usage")
    assert balance.images_spent == -sum(
        (e.amount for e in entries if e.kind == "usage" and e.service == "ai_images"), Decimal("0")
    )

    expected = defaultdict(lambda: [Decimal("0"), 0, 0, 0, 0])
    for e in entries:
        key = (e.occurred_at.astimezone(license.tzinfo).date(), e.kind, e.service)
        row = expected[key]
        row[0] += e.amount
        row[1] += e.tokens
        row[2] += e.images
        row[3] += e.api_calls
        row[4] += 1
    actual = {
        (r.day, r.kind, r.service): [r.amount, r.tokens, r.images, r.api_calls, r.entries]
        for r in DailyRollup.objects.for_license(license)
    }
    assert actual == dict(expected)
