"""Reads of a license's money: its balance and totals, and what was refunded of a charge.
Every tenant query goes through `for_license`."""

from decimal import Decimal

from django.db.models import Sum

from accounts.models import License
from billing.models import LedgerEntry, LicenseBalance


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
