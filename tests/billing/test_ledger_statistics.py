"""Bulk loads leave the ledger's tables analyzed (issue 27): this PostgreSQL runs with
autovacuum off, as a deployment whose autovacuum is behind a backfill does, so nothing else
would give the planner statistics. Committed data (transaction=True): the statistics
counters only see what committed."""

from collections.abc import Iterator

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import License
from billing.ledger.statistics import LEDGER_TABLES, ledger_statistics_refresh
from billing.tasks import refresh_ledger_statistics
from tests.ledger import charge, record
from tests.processes import profile_for
from tests.usage.conftest import _quick_upstream_client, start_simulator
from usage.services import sync as sync_service
from usage.services.sync import usage_sync_license

pytestmark = pytest.mark.django_db(transaction=True)

# The upstream simulator and its quick client, as the usage tests start them.
__all__ = ["_quick_upstream_client", "start_simulator"]


def analyze_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        # The counters this session changed reach the view once it has been idle.
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT relname, analyze_count FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            [list(LEDGER_TABLES)],
        )
        return dict(cursor.fetchall())


@pytest.fixture
def settled() -> Iterator[None]:
    """The tables analyzed as they are (emptied by the tests before), so each test sees only
    its own changes, against the size it starts from."""
    with connection.cursor() as cursor:
        for name in LEDGER_TABLES:
            cursor.execute(f"ANALYZE {name}")
    yield


@pytest.mark.usefixtures("settled")
def test_a_load_of_a_tenth_of_the_table_is_analyzed_once_and_then_left_alone(license_a: License):
    before = analyze_counts()
    assert ledger_statistics_refresh() == []  # nothing changed since
    charge(license_a, *(record(timezone.now(), input_tokens=100 + n) for n in range(2_000)))

    analyzed = refresh_ledger_statistics()  # what the beat runs

    assert "billing_ledgerentry" in analyzed and "billing_dailyrollup" not in analyzed
    after = analyze_counts()
    assert after["billing_ledgerentry"] == before["billing_ledgerentry"] + 1
    assert after["billing_dailyrollup"] == before["billing_dailyrollup"]  # one row changed
    assert ledger_statistics_refresh() == []


@pytest.mark.usefixtures("settled")
def test_a_sync_that_backfills_a_license_leaves_the_ledger_analyzed(
    start_simulator, license_a: License, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(sync_service, "BACKFILL_RECORDS", 100)
    start_simulator(profiles=[profile_for(license_a, days=2)])
    before = analyze_counts()

    result = usage_sync_license(license=license_a, trigger="test")

    assert result.complete and result.records_charged >= 100
    assert analyze_counts()["billing_ledgerentry"] == before["billing_ledgerentry"] + 1
