"""The upstream sync against the real simulator over HTTP."""

from datetime import UTC, datetime

import pytest

from accounts.demo import seed_demo_accounts
from tests.usage.checks import assert_ledger_matches_upstream
from usage.services import usage_sync_license
from usage.simulator import demo_profiles
from usage.upstream import upstream_summary


@pytest.mark.django_db
def test_a_full_sync_makes_every_demo_license_ledger_equal_the_upstream_summary(start_simulator):
    licenses = seed_demo_accounts()
    start_simulator(profiles=demo_profiles(), now=datetime(2025, 9, 20, 15, tzinfo=UTC))
    for license in licenses.values():
        result = usage_sync_license(license=license, trigger="test")
        summary = upstream_summary(license_key=license.key)
        assert result.error == "" and result.complete
        assert summary["records"] > 50
        assert result.records_charged == summary["records"]
        assert_ledger_matches_upstream(license, summary)
