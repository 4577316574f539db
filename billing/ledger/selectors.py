"""Reads of a license's money: its balance and totals, and what was refunded of a charge.
Every tenant query goes through `for_license`."""

from decimal import Decimal

from django.db.models import Sum

from accounts.models import License
from accounts.signals import LicenseSummary
from billing.models import LedgerEntry, LicenseBalance
from billing.money import format_money


def refunded_total_for_entry(entry: LedgerEntry) -> Decimal:
    total = (
        LedgerEntry.objects.for_license(entry.license_id)
        .filter(refund_of=entry)
        .aggregate(total=Sum("amount"))["total"]
    )
    return total or Decimal("0")


def balance_get(license: License) -> LicenseBalance:
    """The license's balance and totals (zeros for a license with no entries yet)."""
    balance = LicenseBalance.objects.for_license(license).first()
    return balance or LicenseBalance(license=license)


def license_summaries(licenses: list[License]) -> dict[int, LicenseSummary]:
    """The license list's balance and low-balance state per license, in one query."""
    balances = {b.license_id: b for b in LicenseBalance.objects.filter(license__in=licenses)}
    summaries = {}
    for license in licenses:
        balance = balances.get(license.pk) or LicenseBalance(license=license)
        if not balance.has_activity:
            state = "new"
        elif balance.warns_low_balance(license.low_balance_threshold):
            state = "low"
        else:
            state = "ok"
        summaries[license.pk] = LicenseSummary(format_money(balance.balance), state)
    return summaries
