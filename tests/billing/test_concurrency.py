"""Invariants 1, 3 and 4 under real concurrency: several OS processes (each its own
database connection, committed data, the real PostgreSQL) record usage, purchases,
refunds and goodwill credits on the same licenses at the same instant."""

import json
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import Count, Sum

from billing.charges.services import UsageRecord, usage_record_batch
from billing.models import LedgerEntry
from billing.money import charge_for
from billing.reconciliation.report import reconciliation_month
from tests.accounts.factories import LicenseFactory
from tests.billing.ledger_worker import purchase_spec, record_spec
from tests.ledger import T0, assert_ledger_consistent, over_refunded_charges
from tests.processes import child_env

WORKERS = 4


def run_workers(specs: list[dict]) -> list[dict]:
    """Start one process per spec, all released at the same instant; return their reports."""
    start_at = time.time() + 4.0  # time for every interpreter to import Django first
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.billing.ledger_worker",
                json.dumps({**s, "start_at": start_at}),
            ],
            cwd=Path(settings.BASE_DIR),
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in specs
    ]
    reports = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr[-3000:]
        report = json.loads(stdout.strip().splitlines()[-1])
        assert report["errors"] == [], report["errors"]
        reports.append(report)
    return reports


def expected_usage(numbers) -> tuple[Decimal, int]:
    """What a set of record numbers costs at the default prices, and how many entries."""
    price = {
        "input_tokens": Decimal("0.60") / 1_000_000,
        "cached_tokens": Decimal("0.075") / 1_000_000,
        "completion_tokens": Decimal("1.00") / 1_000_000,
        "images": Decimal("0.0001"),
    }
    total, entries = Decimal(0), 0
    for n in numbers:
        spec = record_spec(n)
        used = [(k, spec[k]) for k in price if spec[k] > 0]
        total += sum((charge_for(q, price[k]) for k, q in used), Decimal(0))
        entries += max(len(used), 1)
    return total, entries


@pytest.mark.django_db(transaction=True)
def test_concurrent_money_movements_keep_every_invariant(billing_user):
    licenses = [
        LicenseFactory(key="CONC-UTC-01", timezone="UTC"),
        LicenseFactory(key="CONC-KTM-02", timezone="Asia/Kathmandu"),  # +05:45
        LicenseFactory(key="CONC-NYC-03", timezone="America/New_York"),
    ]
    # A few charges exist before the storm, so refunds race from the first instant.
    for lic in licenses:
        usage_record_batch(
            license=lic,
            records=[
                UsageRecord(id=f"seed-{i}", occurred_at=T0, completion_tokens=500_000)
                for i in range(3)
            ],
        )
    reports = run_workers(
        [
            {
                "scenario": "mixed",
                "worker": w,
                "operations": 70,
                "record_pool": 120,
                "payment_pool": 25,
                "license_keys": [lic.key for lic in licenses],
                "actor_email": billing_user.email,
            }
            for w in range(WORKERS)
        ]
    )
    # The storm really overlapped: workers collided on records, payments and shared keys.
    submitted: Counter[tuple[str, int]] = Counter()
    for r in reports:
        for key, numbers in r["records"].items():
            submitted.update((key, n) for n in numbers)
    assert any(count > 1 for count in submitted.values())
    assert sum(r["refunds_created"] for r in reports) > 10

    for lic in licenses:
        # Invariant 1: the balance, every total and every rollup equal their entries.
        assert_ledger_consistent(lic)
        entries = LedgerEntry.objects.for_license(lic)

        # Invariant 3: each record submitted (by any worker, any number of times) is
        # charged exactly once, at the right price; nothing else was charged.
        numbers = {n for r in reports for n in r["records"].get(lic.key, [])}
        amount, count = expected_usage(numbers)
        usage = entries.filter(kind="usage").exclude(external_id__startswith="seed-")
        assert usage.count() == count
        assert -(usage.aggregate(s=Sum("amount"))["s"] or 0) == amount
        charged_records = {e.split(":")[0] for e in usage.values_list("external_id", flat=True)}
        assert charged_records == {record_spec(n)["id"] for n in numbers}
        assert not entries.values("external_id").annotate(n=Count("id")).filter(n__gt=1).exists()

        # Each payment reference once, with its amount.
        paid = {n for r in reports for n in r["payments"].get(lic.key, [])}
        purchases = entries.filter(kind="purchase")
        assert sorted(purchases.values_list("external_id", flat=True)) == sorted(
            purchase_spec(n)[0] for n in paid
        )
        assert (purchases.aggregate(s=Sum("amount"))["s"] or 0) == sum(
            (purchase_spec(n)[1] for n in paid), Decimal(0)
        )

        # Invariant 4: no charge refunded past itself; a shared key made one refund.
        assert over_refunded_charges(lic) == []
        assert entries.filter(external_id__startswith="refund:shared-").count() == len(
            set(
                entries.filter(external_id__startswith="refund:shared-").values_list(
                    "refund_of", flat=True
                )
            )
        )

    report = reconciliation_month(month=T0.date().replace(day=1))
    assert report.ok, [(r.key, [str(d) for d in r.differences]) for r in report.differing]


@pytest.mark.django_db(transaction=True)
def test_two_refunds_racing_on_one_charge_cannot_both_pass(billing_user):
    lic = LicenseFactory(key="RACE-000001")
    usage_record_batch(
        license=lic,
        records=[
            UsageRecord(id=f"c{i}", occurred_at=T0, completion_tokens=1_000_000) for i in range(8)
        ],
    )
    charges = list(LedgerEntry.objects.for_license(lic).values_list("pk", flat=True))
    # Each of two processes refunds $0.60 of every $1.00 charge at the same instant:
    # for each charge exactly one may pass.
    reports = run_workers(
        [
            {
                "scenario": "race_refund",
                "worker": w,
                "charge_ids": charges,
                "amount": "0.600000",
                "license_keys": [lic.key],
                "actor_email": billing_user.email,
            }
            for w in range(2)
        ]
    )
    won = Counter(pk for r in reports for pk in r["won"])
    lost = Counter(pk for r in reports for pk in r["lost"])
    assert won == Counter(charges)  # exactly one winner per charge
    assert lost == Counter(charges)  # and exactly one refused
    for pk in charges:
        refunded = LedgerEntry.objects.filter(refund_of_id=pk).aggregate(s=Sum("amount"))["s"]
        assert refunded == Decimal("0.600000")
    assert_ledger_consistent(lic)
