"""The upstream sync against the real simulator over HTTP."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError, transaction

from billing.ledger.selectors import balance_get
from demo.accounts import seed_demo_accounts
from demo.upstream import demo_profiles
from tests.ledger import assert_ledger_matches_upstream, ledger_charges, ledger_usage
from tests.processes import NOW, profile_for
from usage.models import QuarantinedRecord, SyncState
from usage.services.sync import usage_sync_license
from usage.simulator import Faults
from usage.upstream import upstream_summary


def get_sync_state(license) -> SyncState:
    return SyncState.objects.for_license(license).get()


def sync_until_done(license, runs: int = 5):
    """Sync as the beat would, run after run, until one completes; the summed result."""
    total = None
    for _ in range(runs):
        result = usage_sync_license(license=license, trigger="test")
        if total is None:
            total = result
        else:
            for name in (
                "pages",
                "records_received",
                "records_charged",
                "records_duplicate",
                "records_quarantined",
            ):
                setattr(total, name, getattr(total, name) + getattr(result, name))
        if result.complete:
            total.complete, total.error = True, ""
            return total
    raise AssertionError(f"no sync completed in {runs} runs: {result.error}")


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


@pytest.mark.django_db
def test_faults_change_nothing_late_records_are_charged_when_they_arrive(
    start_simulator, license_a, settings
):
    settings.UPSTREAM_PAGE_SIZE = 40  # many pages, so every fault gets its chance
    profile = profile_for(license_a, days=2, stop_at=NOW - timedelta(hours=7))

    # The reference: the same usage served without faults, synced, then rolled back.
    with transaction.atomic():
        start_simulator(profiles=[profile])
        clean = usage_sync_license(license=license_a, trigger="test")
        assert clean.complete and clean.records_duplicate == 0
        clean_charges = ledger_charges(license_a)
        clean_balance = balance_get(license_a).balance
        transaction.set_rollback(True)
    assert not ledger_charges(license_a)

    faults = Faults(
        error_share=0.2, timeout_share=0.05, timeout_seconds=1.5, repeat_share=0.4, late_share=0.2
    )
    server = start_simulator(profiles=[profile], faults=faults, now=NOW - timedelta(hours=9))
    first = sync_until_done(license_a)
    early = upstream_summary(license_key=license_a.key)
    assert_ledger_matches_upstream(license_a, early)
    # Late records (still on their way at that hour) were not in the first sync.
    assert early["records"] < clean.records_charged

    server.simulator.now = NOW
    second = sync_until_done(license_a)
    assert_ledger_matches_upstream(license_a, upstream_summary(license_key=license_a.key))
    assert ledger_charges(license_a) == clean_charges
    assert balance_get(license_a).balance == clean_balance
    assert first.records_charged + second.records_charged == clean.records_charged
    stats = server.simulator.stats
    assert stats.errors_injected and stats.timeouts_injected and stats.records_repeated
    assert first.records_duplicate + second.records_duplicate >= stats.records_repeated


@pytest.mark.django_db
def test_malformed_records_are_quarantined_and_counted_while_the_good_ones_are_charged(
    start_simulator, license_a, settings
):
    settings.UPSTREAM_PAGE_SIZE = 200  # several pages, so a quarantined record's cursor shows
    start_simulator(
        profiles=[profile_for(license_a, days=2)],
        faults=Faults(malformed_share=0.15, repeat_share=0.5),
    )
    result = sync_until_done(license_a)
    summary = upstream_summary(license_key=license_a.key)

    assert_ledger_matches_upstream(license_a, summary)
    assert summary["malformed_served"] > 20
    quarantined = QuarantinedRecord.objects.for_license(license_a)
    assert quarantined.count() == summary["malformed_served"] == result.records_quarantined
    assert get_sync_state(license_a).records_quarantined == summary["malformed_served"]
    assert set(quarantined.values_list("reason_code", flat=True)) == {
        "missing_field",
        "bad_quantity",
        "unknown_license",
        "bad_date",
        "bad_id",
        "bad_text",
    }
    # Values PostgreSQL could not store raw (NaN, NUL) are kept readable, not lost.
    assert quarantined.filter(reason__contains='"NaN"').exists()
    assert quarantined.filter(record_id__contains="\\u0000").exists()
    negative = quarantined.filter(reason__contains="is negative").first()
    assert negative.raw["completion_tokens"] < 0
    assert quarantined.exclude(cursor="").exists()  # where in the stream each came from
    # Quarantined ids are never charged.
    charged_ids = {eid.rsplit(":", 1)[0] for eid, *_ in ledger_charges(license_a)}
    assert not charged_ids & set(quarantined.values_list("record_id", flat=True))


@pytest.mark.django_db
def test_a_sync_stopped_between_pages_resumes_exactly(start_simulator, license_a, settings):
    settings.UPSTREAM_PAGE_SIZE = 50
    start_simulator(profiles=[profile_for(license_a, days=1)])
    partial = usage_sync_license(license=license_a, trigger="test", max_pages=2)
    assert partial.pages == 2 and not partial.complete
    assert ledger_usage(license_a)["records"] == partial.records_charged == 100
    assert get_sync_state(license_a).last_success_at is None

    rest = usage_sync_license(license=license_a, trigger="test")
    assert rest.complete and rest.records_duplicate == 0
    summary = upstream_summary(license_key=license_a.key)
    assert partial.records_charged + rest.records_charged == summary["records"]
    assert_ledger_matches_upstream(license_a, summary)
    assert get_sync_state(license_a).last_success_at is not None


@pytest.mark.django_db
def test_a_crash_inside_a_page_rolls_back_its_charges_and_the_next_run_charges_them_once(
    start_simulator, license_a, settings, monkeypatch
):
    settings.UPSTREAM_PAGE_SIZE = 50
    start_simulator(profiles=[profile_for(license_a, days=1)], faults=Faults(malformed_share=0.1))
    usage_sync_license(license=license_a, trigger="test", max_pages=1)
    charged_after_first_page = ledger_usage(license_a)["records"]
    cursor_after_first_page = get_sync_state(license_a).cursor

    # The database write after the charges fails in the middle of the second page.
    def crash(*args, **kwargs):
        raise OperationalError("connection lost")

    monkeypatch.setattr(QuarantinedRecord.objects, "bulk_create", crash)
    with pytest.raises(OperationalError):
        usage_sync_license(license=license_a, trigger="test")
    assert ledger_usage(license_a)["records"] == charged_after_first_page
    assert get_sync_state(license_a).cursor == cursor_after_first_page
    assert "Internal error" in get_sync_state(license_a).last_error

    monkeypatch.undo()
    result = usage_sync_license(license=license_a, trigger="test")
    assert result.complete and result.records_duplicate == 0
    assert_ledger_matches_upstream(license_a, upstream_summary(license_key=license_a.key))


@pytest.mark.django_db
def test_an_upstream_that_stays_down_leaves_the_cursor_and_says_why(
    start_simulator, license_a, settings
):
    server = start_simulator(
        profiles=[profile_for(license_a, days=1)], faults=Faults(error_share=1.0)
    )
    result = usage_sync_license(license=license_a, trigger="test")
    assert result.ran and not result.complete and result.pages == 0
    assert "answered 5" in result.error and "6 attempts" in result.error
    state = get_sync_state(license_a)
    assert state.cursor == "" and state.last_error == result.error and state.last_error_at
    assert state.last_attempt_at and state.last_success_at is None
    assert server.simulator.stats.errors_injected == settings.UPSTREAM_MAX_ATTEMPTS

    server.stop()
    down = usage_sync_license(license=license_a, trigger="test")
    assert "refused the connection" in down.error


@pytest.mark.django_db
def test_a_wrong_token_is_a_clear_error_without_retries(start_simulator, license_a, settings):
    server = start_simulator(profiles=[profile_for(license_a, days=1)])
    settings.UPSTREAM_TOKEN = "wrong"
    result = usage_sync_license(license=license_a, trigger="test")
    assert result.error == "Upstream answered 401: missing or wrong bearer token."
    assert server.simulator.stats.by_path["/v1/usage"] == 1
