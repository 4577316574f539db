"""Migrations billing.0016 and billing.0017 on a ledger that has history: the totals move to
one per movement (Total Purchased gross again, old goodwill a credit), and every license
gets its credit grants as the posting engine would have kept them (invariant 13)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import License
from billing.models import CreditGrant, GrantDailyRollup, LicenseBalance
from tests.accounts.factories import LicenseFactory
from tests.ledger import assert_ledger_consistent, ledger_sums

BEFORE = [("billing", "0015_money_events")]
T = datetime(2025, 6, 1, 12, tzinfo=UTC)


def migrate(targets: list[tuple[str, str]] | None = None) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.fixture
def at_0015(transactional_db: None) -> Iterator[None]:
    migrate(BEFORE)
    try:
        yield
    finally:
        migrate()


def insert(license: License, kind: str, amount: str, n: int, **extra: str | int) -> int:
    row: dict[str, str | int | Decimal | datetime] = {
        "license_id": license.pk, "kind": kind, "service": "", "amount": Decimal(amount),
        "tokens": 0, "images": 0, "api_calls": 0, "description": "", "reason": "",
        "occurred_at": T + timedelta(hours=n), "recorded_at": T + timedelta(hours=n),
        "external_id": f"old-{n}", **extra,
    }  # fmt: skip
    columns = ", ".join(row)
    values = ", ".join(["%s"] * len(row))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO billing_ledgerentry ({columns}) VALUES ({values}) RETURNING id",  # noqa: S608
            list(row.values()),
        )
        entry_id: int = cursor.fetchone()[0]
    return entry_id


OLD_BALANCE_SQL = """
INSERT INTO billing_licensebalance (
    license_id, balance, total_purchased, total_spent, total_refunded, total_credited,
    api_calls, input_tokens, cached_tokens, completion_tokens, images, images_spent, entries,
    money_entries, updated_at, alert_level, alerts_since, endpoint_rollups_ready
)
SELECT %(id)s, sum(amount),
       -- as billing.0015 kept them: purchased net of card refunds, goodwill among refunds
       coalesce(sum(amount) FILTER (WHERE kind = 'purchase' OR (kind = 'refund' AND amount < 0)), 0),
       coalesce(-sum(amount) FILTER (WHERE kind = 'usage'), 0),
       coalesce(sum(amount) FILTER (WHERE kind = 'refund' AND amount > 0), 0),
       coalesce(sum(amount) FILTER (WHERE kind = 'credit'), 0),
       sum(api_calls), coalesce(sum(tokens) FILTER (WHERE service = 'ai_data' AND kind = 'usage'), 0),
       0, 0, coalesce(sum(images) FILTER (WHERE kind = 'usage'), 0),
       coalesce(-sum(amount) FILTER (WHERE kind = 'usage' AND service = 'ai_images'), 0),
       count(*), count(*) FILTER (WHERE kind <> 'usage'), now(), 0, now(), true
FROM billing_ledgerentry WHERE license_id = %(id)s
"""

OLD_ROLLUPS_SQL = """
INSERT INTO billing_dailyrollup (license_id, day, kind, service, amount, tokens, images, api_calls, entries)
SELECT license_id, (occurred_at AT TIME ZONE 'UTC')::date, kind, service, sum(amount),
       sum(tokens), sum(images), sum(api_calls), count(*)
FROM billing_ledgerentry WHERE license_id = %(id)s GROUP BY 1, 2, 3, 4;
INSERT INTO billing_endpointdailyrollup (license_id, day, endpoint, service, amount, tokens, images, api_calls, entries)
SELECT license_id, (occurred_at AT TIME ZONE 'UTC')::date, endpoint, service, sum(amount),
       sum(tokens), sum(images), sum(api_calls), count(*)
FROM billing_ledgerentry WHERE license_id = %(id)s AND kind = 'usage' GROUP BY 1, 2, 3, 4;
"""


def test_history_gets_its_totals_by_movement_and_its_grants(at_0015: None) -> None:
    old = LicenseFactory(key="OLD-HISTORY-1", timezone="UTC")
    bought = insert(old, "purchase", "10", 1)
    insert(old, "refund", "4", 2, description="goodwill before the credit kind", reason="x")
    insert(old, "credit", "3", 3, reason="promotion")
    usage = insert(old, "usage", "-12", 4, service="ai_images", images=120_000, api_calls=1)
    insert(old, "refund", "2", 5, service="ai_images", refund_of_id=usage, reason="sorry")
    insert(old, "refund", "-1", 6, refund_of_id=bought, reason="to the card")
    quiet = LicenseFactory(key="OLD-QUIET-2", timezone="UTC")
    insert(quiet, "purchase", "5", 7)
    with connection.cursor() as cursor:
        for lic in (old, quiet):
            cursor.execute(OLD_BALANCE_SQL, {"id": lic.pk})
            cursor.execute(OLD_ROLLUPS_SQL, {"id": lic.pk})
        cursor.execute(
            "SELECT total_purchased, total_refunded FROM billing_licensebalance"
            " WHERE license_id = %s",
            [old.pk],
        )
        assert cursor.fetchone() == (Decimal("9"), Decimal("6"))  # net, goodwill a refund

    migrate()

    balance = LicenseBalance.objects.get(license=old)
    assert balance.balance == Decimal("6")
    assert (balance.total_purchased, balance.total_purchase_refunded) == (Decimal("10"), 1)
    assert (balance.total_credited, balance.total_refunded) == (Decimal("7"), Decimal("2"))
    assert {k: balance.__dict__[k] for k in ledger_sums(old)} == ledger_sums(old)
    grants = {g.entry_id: g for g in CreditGrant.objects.filter(license=old)}
    assert len(grants) == 3
    paid = grants[bought]
    # Usage 12 less 2 given back: the promotional 4 + 3 first, then 3 of the paid 10 (less
    # the 1 refunded to the card): 6 left, the balance.
    assert (paid.kind, paid.refunded, paid.consumed, paid.remaining) == ("paid", 1, 3, 6)
    assert sorted(g.remaining for g in grants.values() if g.kind == "promotional") == [0, 0]
    assert GrantDailyRollup.objects.filter(license=old).exists()
    assert_ledger_consistent(old)
    assert_ledger_consistent(quiet)
    assert CreditGrant.objects.get(license=quiet).remaining == Decimal("5")
