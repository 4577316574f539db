"""Comparisons of the ledger with the upstream's summary, shared by the sync tests."""

from django.db.models import Count, Q, Sum

from billing.models import DailyRollup, LedgerEntry, LicenseBalance

USAGE = LedgerEntry.Kind.USAGE


def ledger_usage(license) -> dict:
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


def assert_ledger_matches_upstream(license, summary: dict) -> None:
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


def ledger_charges(license) -> set[tuple]:
    """Every usage charge as (external id, amount, tokens, images, occurred_at)."""
    return set(
        LedgerEntry.objects.for_license(license)
        .filter(kind=USAGE)
        .values_list("external_id", "amount", "tokens", "images", "occurred_at")
    )
