"""A separate OS process that moves money through the real services, for the concurrency
tests (tests/billing/test_concurrency.py). Not a test module itself.

    python -m tests.billing.ledger_worker '<json spec>'

It waits for spec["start_at"] (a shared wall-clock instant) so every worker starts at once,
runs its scenario, and prints one JSON line with what it did. Any unexpected exception
(a deadlock, a constraint violation) is counted, not swallowed silently.
"""

import json
import os
import random
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported for real once django.setup() has run (main)
    from accounts.models import License, User
    from billing.charges.services import UsageRecord

# The JSON spec a worker is started with, and the JSON answer it prints.
Spec = dict[str, Any]
Out = dict[str, Any]

# Upstream records and payments drawn from shared pools, so workers collide on purpose.
# Each is a pure function of its number: a duplicate is byte-for-byte the same record.
BASE = datetime(2025, 6, 1, tzinfo=UTC)


def record_spec(n: int) -> dict:
    return {
        "id": f"rec-{n}",
        # Spread over ~3 days, many close to midnights of several timezones.
        "occurred_at": (BASE + timedelta(minutes=37 * n, seconds=n % 60)).isoformat(),
        "input_tokens": (n * 7919) % 5000,
        "cached_tokens": (n * 104729) % 70,
        "completion_tokens": (n * 31) % 900 if n % 3 else 0,
        "images": n % 4 if n % 5 == 0 else 0,
    }


def purchase_spec(n: int) -> tuple[str, Decimal]:
    return f"pay-{n}", Decimal(n % 17 + 1) + Decimal(n) / 1_000_000


def _usage_record(spec: dict[str, Any]) -> "UsageRecord":
    from billing.charges.services import UsageRecord

    return UsageRecord(
        id=spec["id"],
        occurred_at=datetime.fromisoformat(spec["occurred_at"]),
        input_tokens=spec["input_tokens"],
        cached_tokens=spec["cached_tokens"],
        completion_tokens=spec["completion_tokens"],
        images=spec["images"],
    )


def mixed(
    spec: Spec, licenses: "list[License]", actor: "User", rng: random.Random, out: Out
) -> None:
    from billing.charges.services import usage_record_batch
    from billing.models import LedgerEntry
    from billing.purchases.services import purchase_record
    from billing.refunds.services import refund_issue
    from portal.exceptions import ApplicationError

    for i in range(spec["operations"]):
        license = rng.choice(licenses)
        op = rng.random()
        if op < 0.5:
            numbers = [rng.randrange(spec["record_pool"]) for _ in range(rng.randint(1, 6))]
            usage_record_batch(
                license=license, records=[_usage_record(record_spec(n)) for n in numbers]
            )
            out["records"].setdefault(license.key, []).extend(numbers)
        elif op < 0.65:
            n = rng.randrange(spec["payment_pool"])
            ref, amount = purchase_spec(n)
            purchase_record(license=license, amount=amount, external_id=ref)
            out["payments"].setdefault(license.key, []).append(n)
        elif op < 0.95:
            charge = (
                LedgerEntry.objects.for_license(license)
                .filter(kind="usage", amount__lt=0)
                .order_by("?")
                .first()
            )
            if charge is None:
                continue
            shared = rng.random() < 0.3
            amount = (
                Decimal("0.000001")
                if shared
                else Decimal(rng.randint(1, int(-charge.amount * 1_000_000))) / 1_000_000
            )
            key = f"shared-{charge.pk}" if shared else f"w{spec['worker']}-{i}"
            try:
                result = refund_issue(
                    acting_user=actor,
                    license=license,
                    amount=amount,
                    reason="concurrency test",
                    idempotency_key=key,
                    refund_of=charge,
                )
                out["refunds_created" if result.created else "refunds_repeated"] += 1
            except ApplicationError:
                out["refunds_refused"] += 1
        else:
            refund_issue(
                acting_user=actor,
                license=license,
                amount=Decimal(rng.randint(1, 500_000)) / 1_000_000,
                reason="goodwill under load",
                idempotency_key=f"gw-w{spec['worker']}-{i}",
            )
            out["goodwill"] += 1


def race_refund(
    spec: Spec, licenses: "list[License]", actor: "User", rng: random.Random, out: Out
) -> None:
    from billing.models import LedgerEntry
    from billing.refunds.services import refund_issue
    from portal.exceptions import ApplicationError

    charges = list(LedgerEntry.objects.filter(pk__in=spec["charge_ids"]).select_related("license"))
    _wait(spec)  # everything loaded: the refunds themselves start at the same instant
    for charge in charges:
        try:
            refund_issue(
                acting_user=actor,
                license=charge.license,
                amount=Decimal(spec["amount"]),
                reason="race",
                idempotency_key=f"race-w{spec['worker']}-{charge.pk}",
                refund_of=charge,
            )
            out["won"].append(charge.pk)
        except ApplicationError:
            out["lost"].append(charge.pk)


def _wait(spec: Spec) -> None:
    while time.time() < spec["start_at"]:
        time.sleep(0.002)


def main() -> int:
    spec = json.loads(sys.argv[1])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from accounts.models import License, User

    licenses = list(License.objects.filter(key__in=spec["license_keys"]).order_by("key"))
    actor = User.objects.get(email=spec["actor_email"])
    rng = random.Random(spec["worker"])  # reproducible test traffic, not secrets
    out: Out = {
        "worker": spec["worker"],
        "records": {},
        "payments": {},
        "refunds_created": 0,
        "refunds_repeated": 0,
        "refunds_refused": 0,
        "goodwill": 0,
        "won": [],
        "lost": [],
        "errors": [],
    }
    scenario = {"mixed": mixed, "race_refund": race_refund}[spec["scenario"]]
    if spec["scenario"] != "race_refund":
        _wait(spec)
    try:
        scenario(spec, licenses, actor, rng, out)
    except Exception:  # reported to the test, which fails on any
        out["errors"].append(traceback.format_exc())
    print(json.dumps(out))  # noqa: T201 - the result goes to the parent on stdout
    return 0


if __name__ == "__main__":
    sys.exit(main())
