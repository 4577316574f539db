"""Steps the fault tests run in a child process against a private PostgreSQL cluster.

`python -m tests.private_child ACTION ARGS...` with DATABASE_URL pointing at the cluster;
prints one JSON line. The child is a separate process so the cluster can be restarted
under it, as a real web or worker process would see it.
"""

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from django.db.models import Sum  # noqa: E402

from accounts.models import AuditEvent, License, User  # noqa: E402
from billing.charges.services import UsageRecord, usage_record_batch  # noqa: E402
from billing.models import LedgerEntry, LicenseBalance  # noqa: E402
from billing.purchases.services import purchase_record  # noqa: E402
from billing.refunds.services import refund_issue  # noqa: E402
from tests.ledger import assert_ledger_matches_upstream  # noqa: E402


def license_create(key: str, tz: str = "UTC") -> dict:
    license, _ = License.objects.get_or_create(
        key=key, defaults={"name": key, "contact_email": "ops@faults.example", "timezone": tz}
    )
    return {"id": license.pk}


def charge_create(key: str) -> dict:
    license = License.objects.get(key=key)
    purchase_record(license=license, amount=Decimal("10.00"), external_id=f"pay-{key}")
    usage_record_batch(
        license=license,
        records=[
            UsageRecord(
                id=f"{key}-call-1",
                occurred_at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
                input_tokens=1_000_000,
            )
        ],
    )
    charge = LedgerEntry.objects.for_license(license).get(external_id=f"{key}-call-1:ai_data")
    return {"charge": charge.pk, "amount": str(charge.amount)}


def refund(key: str, charge_id: str, idempotency_key: str, amount: str) -> dict:
    license = License.objects.get(key=key)
    actor, _ = User.objects.get_or_create(
        email="billing@faults.example", defaults={"is_staff": True}
    )
    result = refund_issue(
        acting_user=actor,
        license=license,
        amount=Decimal(amount),
        reason="fault test",
        idempotency_key=idempotency_key,
        refund_of=LedgerEntry.objects.get(pk=int(charge_id)),
    )
    return {"created": result.created, "entry": result.entry.pk}


def refund_state(key: str) -> dict:
    license = License.objects.get(key=key)
    refunds = LedgerEntry.objects.for_license(license).filter(kind=LedgerEntry.Kind.REFUND)
    return {
        "refunds": refunds.count(),
        "refunded": str(refunds.aggregate(s=Sum("amount"))["s"] or 0),
        "balance": str(LicenseBalance.objects.for_license(license).get().balance),
        "audits": AuditEvent.objects.filter(license=license, action="refund.issue").count(),
    }


def ledger_check(key: str, summary_json: str) -> dict:
    assert_ledger_matches_upstream(License.objects.get(key=key), json.loads(summary_json))
    return {"ok": True}


def customer_create(key: str, owner_email: str, member_email: str) -> dict:
    """A license with an owner and a member, both with the factories' password."""
    from accounts.models import Membership
    from tests.accounts.factories import PASSWORD

    license = License.objects.create(key=key, name=key, contact_email=owner_email, timezone="UTC")
    for email, role in (
        (owner_email, Membership.Role.OWNER),
        (member_email, Membership.Role.MEMBER),
    ):
        user = User(email=email)
        user.set_password(PASSWORD)
        user.save()
        Membership.objects.create(license=license, user=user, role=role)
    return {"public_id": str(license.public_id), "password": PASSWORD}


# Each takes its arguments as the command line gives them, strings.
ACTIONS: dict[str, Callable[..., dict[str, object]]] = {
    "customer_create": customer_create,
    "license_create": license_create,
    "charge_create": charge_create,
    "refund": refund,
    "refund_state": refund_state,
    "ledger_check": ledger_check,
}

if __name__ == "__main__":
    action, *args = sys.argv[1:]
    sys.stdout.write(json.dumps(ACTIONS[action](*args)) + "\n")
