"""The hot pages keep their index plans on a ledger the planner knows nothing about (issue 27).

This PostgreSQL runs with autovacuum off, and in production a license backfilled with a
million records is the same until autovacuum reaches it: no statistics. With none, the
planner guesses 0.5 % of the table for `license_id = X`; for a table of some ten thousand
rows that is fewer rows than a page shows, so it read all of a large license's entries
through a bitmap and sorted them to keep a hundred (65 ms for alice's 115 K on the demo
data, docs/benchmarks.md). Here one license holds most of a ledger that was never analyzed,
and the plans PostgreSQL actually executed for each hot page (auto_explain, sent to this
connection) must read the ledger through an index, in its order, never all of it."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import License
from billing.limits.gate import gate_authorize
from billing.models import LedgerEntry
from dashboard.selectors.transactions import transactions_recent
from tests.accounts.factories import UserFactory
from tests.api.conftest import bearer
from tests.conftest import staff_force_login
from tests.ledger import charge, record

pytestmark = pytest.mark.django_db

TABLES = ("billing_ledgerentry", "billing_dailyrollup", "billing_endpointdailyrollup")
# Enough that the planner's guess for one license (0.5 % of the table) is below a page of
# entries, as it was on the demo data: the case where it chose a bitmap and a sort.
ENTRIES = 20_000
BATCH = 1_000
# The most rows of these tables one page may read: a tenth of the license.
READ_LIMIT = ENTRIES // 10


@pytest.fixture
def large_license(license_a: License) -> License:
    now = timezone.now()
    for batch in range(ENTRIES // BATCH):
        charge(
            license_a,
            *(
                record(now - timedelta(minutes=batch * BATCH + n), input_tokens=1_000)
                for n in range(BATCH)
            ),
        )
    assert LedgerEntry.objects.for_license(license_a).count() == ENTRIES
    return license_a


def forget_statistics() -> None:
    """The tables as migrate leaves them before anything analyzes them: no column
    statistics, the table's size unknown (the planner counts its pages itself), the
    indexes as built on an empty table. Catalog rows, so the test's rollback restores them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM pg_statistic WHERE starelid = ANY(%s::regclass[])", [list(TABLES)]
        )
        cursor.execute(
            "UPDATE pg_class SET relpages = 0, reltuples = -1, relallvisible = 0"
            " WHERE oid = ANY(%s::regclass[])",
            [list(TABLES)],
        )
        cursor.execute(
            "UPDATE pg_class SET relpages = 1, reltuples = 0 WHERE oid IN"
            " (SELECT indexrelid FROM pg_index WHERE indrelid = ANY(%s::regclass[]))",
            [list(TABLES)],
        )


@contextmanager
def executed_plans() -> Iterator[list[dict[str, Any]]]:
    """The plan of every statement run on this connection inside the block, as PostgreSQL
    executed it (auto_explain at LOG level, which client_min_messages sends here)."""
    plans: list[dict[str, Any]] = []

    def collect(diagnostic: Any) -> None:
        message = diagnostic.message_primary or ""
        if "plan:" in message:
            plans.append(json.loads(message.split("plan:", 1)[1]))

    connection.ensure_connection()
    raw = connection.connection
    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        cursor.execute("SET auto_explain.log_min_duration = 0")
        cursor.execute("SET auto_explain.log_format = 'json'")
        # Row counts, not times: what each node read.
        cursor.execute("SET auto_explain.log_analyze = on")
        cursor.execute("SET auto_explain.log_timing = off")
        cursor.execute("SET client_min_messages = 'log'")
    raw.add_notice_handler(collect)
    try:
        yield plans
    finally:
        raw.remove_notice_handler(collect)
        with connection.cursor() as cursor:
            cursor.execute("RESET client_min_messages")
            cursor.execute("RESET auto_explain.log_min_duration")
            cursor.execute("RESET auto_explain.log_analyze")


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def rows_read(node: dict[str, Any]) -> int:
    return sum(
        node.get(name, 0)
        for name in ("Actual Rows", "Rows Removed by Filter", "Rows Removed by Index Recheck")
    ) * node.get("Actual Loops", 1)


def whole_reads(plans: list[dict[str, Any]]) -> list[str]:
    """Each read of these tables that went through more rows than a page needs: a bitmap
    over all of the license's entries, or a sequential scan."""
    found = []
    for plan in plans:
        for node in nodes(plan["Plan"]):
            if node.get("Relation Name") in TABLES and rows_read(node) > READ_LIMIT:
                query = " ".join(plan["Query Text"].split())
                found.append(
                    f"{node['Node Type']} {node.get('Index Name', '')} read {rows_read(node):,} rows of "
                    f"{node['Relation Name']}: {query[:300]}"
                )
    return found


def compiled(plans: list[dict[str, Any]]) -> list[str]:
    """Plans JIT-compiled: the index-order settings' cost made small reads look big enough
    to compile (0.7 s for a 2 ms page)."""
    return [" ".join(plan["Query Text"].split())[:200] for plan in plans if "JIT" in plan]


def ledger_reads(plans: list[dict[str, Any]]) -> int:
    return sum(
        1
        for plan in plans
        for node in nodes(plan["Plan"])
        if node.get("Relation Name") == "billing_ledgerentry"
    )


def page(client: Client, name: str, license: License, **kwargs: Any) -> Any:
    url = reverse(name, kwargs={"license_id": license.public_id, **kwargs})
    response = client.get(url)
    assert response.status_code == 200, url
    return response


def test_the_customer_pages_api_and_gate_read_a_large_license_by_index_with_no_statistics(
    client_a: Client,
    large_license: License,
    make_key: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
):
    newest = LedgerEntry.objects.for_license(large_license).order_by("-occurred_at", "-id")[0]
    forget_statistics()
    with executed_plans() as plans:
        page(client_a, "dashboard:overview", large_license)
        listing = page(client_a, "dashboard:transactions", large_license)
        older = listing.context["page"].older
        assert older is not None
        client_a.get(
            reverse("dashboard:transactions", kwargs={"license_id": large_license.public_id}),
            {"before": str(older)},
        )
        page(client_a, "dashboard:transaction", large_license, entry_id=newest.pk)
        response = client_a.get(
            f"/api/v1/licenses/{large_license.public_id}/transactions",
            **bearer(make_key(large_license)),
        )
        assert response.status_code == 200
        # The download, a page of a thousand entries at a time.
        monkeypatch.setattr("billing.history.export.HISTORY_PAGE_SIZE", 1_000)
        download: Any = client_a.get(
            reverse("dashboard:history_csv", kwargs={"license_id": large_license.public_id})
        )
        assert b"".join(download.streaming_content).count(b"\r\n") == ENTRIES + 1
        answer = gate_authorize(
            license_key=large_license.key, estimate=Decimal("0.01"), request_id="req-plan"
        )
        assert answer.reason == "balance_exhausted"
    assert ledger_reads(plans) >= 3
    whole = whole_reads(plans)
    assert whole == [], "\n".join(whole)
    assert compiled(plans) == []


def test_the_staff_ledger_pages_read_a_large_license_by_index_with_no_statistics(
    client: Client, large_license: License
):
    staff_force_login(
        client, UserFactory(email="root@portal.example", is_staff=True, is_superuser=True)
    )
    forget_statistics()
    with executed_plans() as plans:
        for name in ("admin:accounts_license_change", "admin:accounts_license_ledger"):
            response = client.get(reverse(name, args=[large_license.pk]))
            assert response.status_code == 200, name
    assert ledger_reads(plans) >= 2
    whole = whole_reads(plans)
    assert whole == [], "\n".join(whole)
    assert compiled(plans) == []


def test_the_planner_setting_ends_with_the_read_even_inside_a_transaction(
    large_license: License,
):
    # The test runs inside a transaction, as a caller's atomic block would: SET LOCAL
    # alone would last to its end and change the plans of everything after the read.
    names = ("enable_bitmapscan", "enable_sort", "enable_incremental_sort", "jit")

    def settings() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(f"current_setting('{n}')" for n in names))
            return list(cursor.fetchone())

    before = settings()
    assert before[:3] == ["on", "on", "on"]
    assert len(transactions_recent(large_license)) == 100
    assert settings() == before


def test_a_license_older_than_the_rest_is_read_by_its_own_index_on_stale_statistics(
    client: Client,
    large_license: License,
    license_b: License,
    member_a: Any,
    monkeypatch: pytest.MonkeyPatch,
):
    # The statistics say the ledger is all this license's (analyzed when it was alone);
    # then another license posts as many entries, all newer. The global index by time gives
    # the same order filtered by license, past every one of the other license's entries.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_ledgerentry")
    now = timezone.now() + timedelta(days=1)
    for batch in range(ENTRIES // BATCH):
        charge(
            license_b,
            *(
                record(now + timedelta(minutes=batch * BATCH + n), input_tokens=1_000)
                for n in range(BATCH)
            ),
        )
    client.force_login(member_a)
    monkeypatch.setattr("billing.history.export.HISTORY_PAGE_SIZE", 1_000)
    with executed_plans() as plans:
        page(client, "dashboard:overview", large_license)
        page(client, "dashboard:transactions", large_license)
        page(client, "dashboard:statements", large_license)
        download: Any = client.get(
            reverse("dashboard:history_csv", kwargs={"license_id": large_license.public_id})
        )
        assert b"".join(download.streaming_content).count(b"\r\n") == ENTRIES + 1
    assert ledger_reads(plans) >= 4
    whole = whole_reads(plans)
    assert whole == [], "\n".join(whole)
    assert compiled(plans) == []
