"""`manage.py sync_usage`: the same sync from a shell, with progress and a summary."""

import io

import pytest
from django.core.management import CommandError, call_command

from tests.ledger import assert_ledger_matches_upstream
from tests.processes import profile_for
from usage.simulator import Faults
from usage.upstream import upstream_summary


def test_sync_usage_shows_progress_and_a_summary_per_license(
    start_simulator, license_a, license_b, settings
):
    settings.UPSTREAM_PAGE_SIZE = 100
    start_simulator(
        profiles=[profile_for(license_a, days=1), profile_for(license_b, days=1)],
        faults=Faults(malformed_share=0.1),
    )
    out = io.StringIO()
    call_command("sync_usage", stdout=out)
    text = out.getvalue()
    summaries = {lic.key: upstream_summary(license_key=lic.key) for lic in (license_a, license_b)}
    for license in (license_a, license_b):
        assert_ledger_matches_upstream(license, summaries[license.key])
    assert "  page 1: 100 records" in text
    header = next(line for line in text.splitlines() if line.startswith("license"))
    assert header.split() == [
        "license",
        "pages",
        "records",
        "charged",
        "duplicates",
        "skipped",
        "quarantined",
        "status",
    ]
    row = [line for line in text.splitlines() if line.startswith(license_a.key)][-1].split()
    summary = summaries[license_a.key]
    records = summary["records"] + summary["malformed_served"]
    assert row[2:] == [
        str(records),
        str(summary["records"]),
        "0",
        str(summary["malformed_served"]),
        "complete",
    ]


def test_sync_usage_names_an_unknown_license_and_fails_when_the_upstream_is_down(
    start_simulator, license_a
):
    with pytest.raises(CommandError, match="No license with key NOPE-123456"):
        call_command("sync_usage", "--license", "NOPE-123456")
    start_simulator(profiles=[profile_for(license_a, days=1)]).stop()
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("sync_usage", "--license", license_a.key, stdout=io.StringIO(), stderr=err)
    assert exit_info.value.code == 1
    assert "failed: Upstream refused the connection" in err.getvalue()
