"""`seed_demo` takes the demo usage from the upstream and derives the money around it, once."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import CommandError, call_command

from accounts.models import License
from billing.ledger.selectors import balance_get
from billing.models import LedgerEntry
from demo.accounts import ACME, GLOBEX
from demo.upstream import demo_profiles
from tests.ledger import assert_ledger_matches_upstream
from usage.upstream import upstream_summary

SEEDED_AT = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)


def entries(license):
    return LedgerEntry.objects.for_license(license)


@pytest.mark.django_db
def test_seed_demo_syncs_usage_and_records_purchases_and_refunds_once(start_simulator):
    server = start_simulator(profiles=demo_profiles(), now=SEEDED_AT)
    with time_machine.travel(SEEDED_AT + timedelta(minutes=1)):
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
        acme, globex = (License.objects.get(key=demo.key) for demo in (ACME, GLOBEX))
        for license in (acme, globex):
            assert_ledger_matches_upstream(license, upstream_summary(license_key=license.key))

        assert Decimal("0") < balance_get(globex).balance < Decimal("1.00")
        assert balance_get(acme).balance >= Decimal("100")
        acme_refunds = entries(acme).filter(kind="refund")
        assert acme_refunds.filter(refund_of__kind="usage").count() == 2
        assert (
            entries(acme).filter(kind="credit", refund_of=None).count() == 1
        )  # the goodwill credit
        assert entries(globex).filter(kind="refund", refund_of__kind="usage").count() == 1
        assert entries(acme).filter(kind="purchase").count() == 4
        counts = {lic.key: entries(lic).count() for lic in (acme, globex)}
        purchases = {
            lic.key: entries(lic).filter(kind="purchase").count() for lic in (acme, globex)
        }
        balances = {lic.key: balance_get(lic).balance for lic in (acme, globex)}

        # Again, with nothing new upstream: nothing at all is added.
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
        assert {lic.key: entries(lic).count() for lic in (acme, globex)} == counts
        assert {lic.key: balance_get(lic).balance for lic in (acme, globex)} == balances

    # A day later: the new usage is charged, the money is not recorded again.
    server.simulator.now = SEEDED_AT + timedelta(days=1)
    with time_machine.travel(SEEDED_AT + timedelta(days=1, minutes=1)):
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    for license in (acme, globex):
        assert_ledger_matches_upstream(license, upstream_summary(license_key=license.key))
        assert entries(license).filter(kind="purchase").count() == purchases[license.key]
    assert balance_get(acme).balance < balances[ACME.key]


@pytest.mark.django_db
def test_seed_demo_without_an_upstream_says_how_to_start_one(start_simulator):
    start_simulator(profiles=demo_profiles(), now=SEEDED_AT).stop()
    with pytest.raises(CommandError, match="Start the simulator"):
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    # The licenses and logins are there all the same.
    assert License.objects.filter(key__in=[ACME.key, GLOBEX.key]).count() == 2


@pytest.mark.django_db
def test_seeding_an_empty_database_sends_no_alert_email(
    start_simulator, django_capture_on_commit_callbacks, celery_eager, mailoutbox
):
    """`make run` seeds from an empty database: the demo's history (Globex ends below its
    $1.00 threshold) is a backfill, and announces nothing: no alert decided, no email, even
    with every after-commit hand-over run as a worker would."""
    from billing.models import BalanceAlert

    start_simulator(profiles=demo_profiles(), now=SEEDED_AT)
    with (
        time_machine.travel(SEEDED_AT + timedelta(minutes=1)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    globex = License.objects.get(key=GLOBEX.key)
    assert balance_get(globex).balance < globex.low_balance_threshold  # a crossing, replayed
    assert BalanceAlert.objects.count() == 0
    assert [m.subject for m in mailoutbox] == []
