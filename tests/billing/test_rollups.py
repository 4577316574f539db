"""Daily rollups equal the ledger, whatever order, repeats and lateness the upstream's
records come in, on the local days of the license's timezone across clock changes, and
after a timezone change or a rebuild by hand. The dashboard's charts, analytics and
forecast are read from them (docs/invariants.md, 1, 8 and 9)."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import License
from accounts.services import license_save
from billing.charges.services import UsageRecord, usage_record_batch
from billing.models import DailyRollup, LedgerEntry
from billing.reconciliation.report import reconciliation_month
from billing.refunds.services import refund_issue
from tests.accounts.factories import LicenseFactory
from tests.ledger import assert_ledger_consistent, buy, record_usage

pytestmark = pytest.mark.django_db

# Windows around New York's 2025 clock changes (Mar 9, 02:00 EST → 03:00 EDT; Nov 2,
# 02:00 EDT → 01:00 EST) and, for Berlin, Mar 30 and Oct 26: local midnights near them
# fall at different UTC hours on either side.
WINDOWS = [
    (datetime(2025, 3, 7, 20, tzinfo=UTC), datetime(2025, 3, 11, 8, tzinfo=UTC)),
    (datetime(2025, 3, 29, 18, tzinfo=UTC), datetime(2025, 3, 31, 6, tzinfo=UTC)),
    (datetime(2025, 10, 25, 18, tzinfo=UTC), datetime(2025, 10, 27, 6, tzinfo=UTC)),
    (datetime(2025, 11, 1, 0, tzinfo=UTC), datetime(2025, 11, 4, 8, tzinfo=UTC)),
]


def random_moment(rng: random.Random, tz) -> datetime:
    """Anywhere in a window, or (half the time) within two hours of a local midnight."""
    start, end = rng.choice(WINDOWS)
    moment = start + (end - start) * rng.random()
    if rng.random() < 0.5:
        local = moment.astimezone(tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        moment = (midnight + timedelta(minutes=rng.uniform(-120, 120))).astimezone(UTC)
    return moment.replace(microsecond=rng.randrange(1_000_000))


def random_record(rng: random.Random, record_id: str, tz) -> UsageRecord:
    kind = rng.random()
    if kind < 0.05:  # a failed call that used nothing: one zero charge
        quantities = {}
    elif kind < 0.25:
        quantities = {"images": rng.randint(1, 50)}
    else:
        quantities = {
            "input_tokens": rng.randint(1, 20_000),
            "cached_tokens": rng.choice([0, 0, rng.randint(1, 50_000)]),
            "completion_tokens": rng.randint(0, 4_000),
        }
    return UsageRecord(
        id=record_id,
        occurred_at=random_moment(rng, tz),
        endpoint="/v1/chat/completions",
        request_id=f"req_{record_id}",
        status="success" if quantities else "error",
        **quantities,
    )


@pytest.mark.parametrize(("seed", "tz_name"), [(1, "America/New_York"), (2, "Europe/Berlin")])
def test_rollups_equal_the_ledger_after_random_batches_with_repeats_and_late_records(
    billing_user, seed, tz_name
):
    rng = random.Random(seed)
    license = LicenseFactory(key=f"ROLL-{seed:06d}", timezone=tz_name)
    tz = license.tzinfo
    buy(license, "50", "pay_0", at=random_moment(rng, tz))
    # The upstream's records: a record served again is the same record (same id, same
    # content); the order they are served in has nothing to do with when they happened.
    records: dict[str, UsageRecord] = {}
    charged: set[str] = set()
    for batch_no in range(30):
        batch = []
        for _ in range(rng.randint(1, 30)):
            if records and rng.random() < 0.3:  # a repeat of a record already served
                batch.append(records[rng.choice(list(records))])
            else:
                record_id = f"s{seed}-r{len(records)}"
                records[record_id] = random_record(rng, record_id, tz)
                batch.append(records[record_id])
        if rng.random() < 0.3:  # the same record twice in one page
            batch.insert(rng.randrange(len(batch) + 1), rng.choice(batch))
        result = usage_record_batch(license=license, records=batch)
        fresh = {r.id for r in batch} - charged
        assert result.records_charged == len(fresh)
        charged |= fresh
        if rng.random() < 0.2:
            buy(
                license,
                f"{rng.randint(1, 20)}.5",
                f"pay_{batch_no}",
                at=random_moment(rng, tz),
            )
        if rng.random() < 0.2:
            charge = (
                LedgerEntry.objects.for_license(license)
                .filter(kind="usage", amount__lt=0)
                .order_by("id")[rng.randrange(10)]
            )
            refund_issue(
                acting_user=billing_user,
                license=license,
                amount=min(-charge.amount, Decimal("0.000100")),
                reason="random refund",
                idempotency_key=f"rf-{seed}-{batch_no}",
                refund_of=charge,
            )
        assert_ledger_consistent(license)

    balance = license.balance
    balance.refresh_from_db()
    assert balance.api_calls == len(charged)  # one API call per distinct record
    for month in (datetime(2025, 3, 1).date(), datetime(2025, 11, 1).date()):
        report = reconciliation_month(month=month, license=license)
        assert report.ok, [str(d) for row in report.rows for d in row.differences]

    # The customer moves to the other side of the world: the same entries fall on other
    # local days, and the rollups follow; later batches keep them exact.
    license.timezone = "Asia/Kolkata"
    license_save(acting_user=None, license=license)
    assert_ledger_consistent(License.objects.get(pk=license.pk))
    late = [records[rng.choice(list(records))] for _ in range(5)]
    late += [random_record(rng, f"s{seed}-late{i}", tz) for i in range(10)]
    usage_record_batch(license=license, records=late)
    assert_ledger_consistent(License.objects.get(pk=license.pk))


def test_a_record_near_local_midnight_counts_on_its_local_day_on_both_sides_of_a_clock_change(
    license_a,
):
    license_a.timezone = "America/New_York"
    license_save(acting_user=None, license=license_a)
    # 04:30 UTC is 23:30 the day before in EST (before Mar 9) but 00:30 in EDT (after).
    record_usage(license_a, "before", at=datetime(2025, 3, 8, 4, 30, tzinfo=UTC), images=1)
    record_usage(license_a, "after", at=datetime(2025, 3, 10, 4, 30, tzinfo=UTC), images=1)
    days = set(DailyRollup.objects.for_license(license_a).values_list("day", flat=True).distinct())
    assert days == {datetime(2025, 3, 7).date(), datetime(2025, 3, 10).date()}
    assert_ledger_consistent(license_a)


def corrupt(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_rebuild_command_restores_rollups_that_were_lost_or_wrong(license_a, license_b):
    for i in range(12):
        at = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(hours=9 * i)
        record_usage(license_a, f"a{i}", at=at, input_tokens=1000 + i, images=i % 2)
        record_usage(license_b, f"b{i}", at=at, completion_tokens=500)
    corrupt(
        "UPDATE billing_dailyrollup SET amount = amount - 1 WHERE license_id = %s", [license_a.pk]
    )
    corrupt(
        "DELETE FROM billing_dailyrollup WHERE license_id = %s AND day = '2025-06-02'",
        [license_a.pk],
    )
    untouched = set(DailyRollup.objects.for_license(license_b).values_list("id", flat=True))
    assert not reconciliation_month(month=datetime(2025, 6, 1).date(), license=license_a).ok

    out = call_command_output("rebuild_rollups", "--license", license_a.key)

    assert f"{license_a.key}: " in out and "rebuilt in UTC" in out
    assert_ledger_consistent(license_a)
    assert reconciliation_month(month=datetime(2025, 6, 1).date(), license=license_a).ok
    # Only the license named was touched.
    assert set(DailyRollup.objects.for_license(license_b).values_list("id", flat=True)) == untouched


def test_the_rebuild_command_follows_a_timezone_changed_outside_the_admin(license_a, license_b):
    record_usage(license_a, "late-evening", at=datetime(2025, 6, 10, 22, tzinfo=UTC), images=1)
    License.objects.filter(pk=license_a.pk).update(timezone="Asia/Tokyo")  # no rebuild
    assert DailyRollup.objects.for_license(license_a).get().day.isoformat() == "2025-06-10"

    call_command_output("rebuild_rollups", "--all")

    assert DailyRollup.objects.for_license(license_a).get().day.isoformat() == "2025-06-11"
    assert_ledger_consistent(License.objects.get(pk=license_a.pk))


def test_the_rebuild_command_refuses_an_unknown_license(db):
    with pytest.raises(CommandError, match="No license has the key 'NOPE-1'"):
        call_command("rebuild_rollups", "--license", "NOPE-1")


def call_command_output(*args) -> str:
    import io

    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()
