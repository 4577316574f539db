"""The demo's usage and the money around it (`manage.py seed_demo`).

Usage comes from the upstream (the simulator under `make run`) through the real sync, so
the ledger's usage equals the upstream's summary. Purchases and refunds are then derived
from what that first sync charged — once: every one has a fixed payment reference or
idempotency key, and a license whose first demo purchase exists is left alone, so a second
run adds nothing.
"""

import logging
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import License, User
from billing.ledger.selectors import balance_get
from billing.models import Document, LedgerEntry
from billing.money import quantize_money
from billing.purchases.services import purchase_record
from billing.refunds.services import refund_issue
from demo.accounts import ACME, GLOBEX, DemoLicense
from portal.exceptions import ApplicationError
from usage.services.results import SyncOutcome, SyncResult
from usage.services.sync import usage_sync_license

logger = logging.getLogger(__name__)

BILLING_LOGIN = "billing@portal.example"
# Globex is the "balance below $1.00" demo; Acme stays comfortably in credit.
GLOBEX_BALANCE_AFTER_SEED = Decimal("0.42")
ACME_CREDIT_AFTER_SEED = Decimal("150.00")
ACME_GOODWILL = Decimal("5.00")


@dataclass(frozen=True)
class DemoMoney:
    purchases: int
    refunds: int
    created: bool


def seed_demo_usage(licenses: dict[str, License]) -> dict[str, SyncResult]:
    """Sync every demo license to the end of what the upstream has."""
    results = {}
    for key, license in licenses.items():
        result = usage_sync_license(license=license, trigger="seed")
        # A long history may take more than one run; the runs are idempotent.
        while result.outcome is SyncOutcome.PARTIAL:
            result = usage_sync_license(license=license, trigger="seed")
        if result.outcome is not SyncOutcome.COMPLETE:
            raise ApplicationError(
                f"Could not sync the usage of {license.name}: {result.error or 'another sync is running'}"
            )
        results[key] = result
    return results


def seed_demo_money(licenses: dict[str, License]) -> dict[str, DemoMoney]:
    billing = User.objects.get(email=BILLING_LOGIN)
    return {
        ACME.key: _seed_acme(licenses[ACME.key], billing),
        GLOBEX.key: _seed_globex(licenses[GLOBEX.key], billing),
    }


def _start_of(demo: DemoLicense) -> datetime:
    return datetime.combine(demo.member_since, time(9), tzinfo=zoneinfo.ZoneInfo(demo.timezone))


def _already_seeded(license: License, first_purchase: str) -> bool:
    return LedgerEntry.objects.for_license(license).filter(external_id=first_purchase).exists()


def _charges(license: License):
    """Real usage charges, biggest first, oldest first among equals: stable for a given ledger."""
    return (
        LedgerEntry.objects.for_license(license)
        .filter(kind=LedgerEntry.Kind.USAGE, amount__lt=0)
        .order_by("amount", "occurred_at", "id")
    )


def _whole_dollars(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal(1), rounding=ROUND_CEILING)


def _purchases(license: License, demo: DemoLicense, prefix: str, amounts: list[Decimal]) -> None:
    start = _start_of(demo)
    span = max(timezone.now() - start, timedelta(days=1))
    for i, amount in enumerate(amounts):
        entry = purchase_record(
            license=license,
            amount=amount,
            external_id=f"{prefix}-purchase-{i + 1}",
            description="Credit purchase (card)",
            occurred_at=start + span * i / len(amounts),
        ).entry
        # History, like the usage: its invoices are on the Documents page but not emailed
        # (the worker finds them sent), so seeding a fresh database mails nobody.
        Document.objects.filter(entry=entry).update(emailed_at=timezone.now())


@transaction.atomic
def _seed_acme(license: License, billing: User) -> DemoMoney:
    prefix = "demo-acme"
    if _already_seeded(license, f"{prefix}-purchase-1"):
        return DemoMoney(0, 0, created=False)
    charges = list(_charges(license)[:2])
    refunds = []
    if charges:
        refunds.append((charges[0], -charges[0].amount, "Customer reported a failed completion"))
    if len(charges) > 1:
        half = quantize_money(-charges[1].amount / 2)
        if half > 0:
            refunds.append((charges[1], half, "Half of a timed-out batch, as agreed"))
    spent = balance_get(license).total_spent
    refunded = sum((amount for _, amount, _ in refunds), ACME_GOODWILL)
    total = _whole_dollars(spent - refunded + ACME_CREDIT_AFTER_SEED)
    quarter = _whole_dollars(total / 4)
    amounts = [a for a in (quarter, quarter, quarter, total - 3 * quarter) if a > 0]
    _purchases(license, ACME, prefix, amounts)
    for i, (charge, amount, reason) in enumerate(refunds):
        refund_issue(
            acting_user=billing,
            license=license,
            amount=amount,
            reason=reason,
            idempotency_key=f"{prefix}-refund-{i + 1}",
            refund_of=charge,
        )
    refund_issue(
        acting_user=billing,
        license=license,
        amount=ACME_GOODWILL,
        reason="Goodwill credit for the slow API week",
        idempotency_key=f"{prefix}-goodwill-1",
    )
    return DemoMoney(len(amounts), len(refunds) + 1, created=True)


@transaction.atomic
def _seed_globex(license: License, billing: User) -> DemoMoney:
    prefix = "demo-globex"
    if _already_seeded(license, f"{prefix}-purchase-1"):
        return DemoMoney(0, 0, created=False)
    charge = _charges(license).first()
    refund = -charge.amount if charge is not None else Decimal(0)
    spent = balance_get(license).total_spent
    # What it takes to land exactly on the low-balance figure.
    total = quantize_money(spent - refund + GLOBEX_BALANCE_AFTER_SEED)
    first = min(Decimal("10.00"), _whole_dollars(total / 2))
    amounts = [first, total - first] if total - first > 0 else [total]
    _purchases(license, GLOBEX, prefix, amounts)
    if charge is not None:
        refund_issue(
            acting_user=billing,
            license=license,
            amount=refund,
            reason="Charged twice for one request",
            idempotency_key=f"{prefix}-refund-1",
            refund_of=charge,
        )
    return DemoMoney(len(amounts), 1 if charge is not None else 0, created=True)
