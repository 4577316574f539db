"""Usage rollups by endpoint (EndpointDailyRollup, the usage explorer's "by endpoint") stay
equal to the ledger's usage entries through refunds, goodwill credits, postings into a
closed month and timezone changes; the reconciliation checks them both ways; and a license
whose history predates them (migration 0014) is reported until `rebuild_rollups` fills
them (docs/invariants.md, 1 and 11)."""

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.services import license_save
from billing.closing.services import month_close
from billing.models import EndpointDailyRollup, LedgerEntry, LicenseBalance
from billing.reconciliation.checks import ENDPOINT_ROLLUPS_NOT_READY
from billing.reconciliation.report import reconciliation_month
from billing.refunds.services import refund_issue
from tests.accounts.factories import LicenseFactory
from tests.ledger import (
    assert_ledger_consistent,
    buy,
    charge,
    endpoint_rollups_from_entries,
    endpoint_rollups_stored,
    record,
    refund,
)

pytestmark = pytest.mark.django_db
JUNE = date(2025, 6, 1)


def problems(month: date, license) -> list[str]:
    return [str(d) for row in reconciliation_month(month=month, license=license).rows
            for d in row.differences]  # fmt: skip


def test_endpoint_rollups_reconcile_after_refunds_credits_and_closed_month_postings(
    billing_user,
):
    lic = LicenseFactory(key="EP-ROLL-01", timezone="America/New_York")
    buy(lic, "50", at=datetime(2025, 6, 2, 15, tzinfo=UTC))
    calls = [
        record(datetime(2025, 6, 5, 3, 59, tzinfo=UTC), input_tokens=10**6, endpoint="/v1/chat"),
        record(datetime(2025, 6, 5, 4, 1, tzinfo=UTC), images=500, endpoint="/v1/images"),
        record(datetime(2025, 6, 20, 12, tzinfo=UTC), cached_tokens=10**5, endpoint="/v1/chat"),
        record(datetime(2025, 6, 21, 12, tzinfo=UTC), endpoint="/v1/chat", status="error"),
        record(datetime(2025, 6, 22, 12, tzinfo=UTC), images=3, endpoint=""),
    ]
    charge(lic, *calls)
    first = LedgerEntry.objects.for_license(lic).filter(kind="usage").order_by("id").first()
    refund(lic, first, "0.100000", billing_user)
    refund_issue(  # goodwill: a credit, not a call
        acting_user=billing_user, license=lic, amount=Decimal("2"), reason="sorry",
        idempotency_key="gw-ep-1",
    )  # fmt: skip
    assert_ledger_consistent(lic)
    # The evening of Jun 4 in New York (03:59 UTC on Jun 5) is its own local day.
    days = set(EndpointDailyRollup.objects.for_license(lic).values_list("day", "endpoint"))
    assert (date(2025, 6, 4), "/v1/chat") in days and (date(2025, 6, 5), "/v1/images") in days
    assert (date(2025, 6, 22), "") in days  # a call that recorded no endpoint still counts
    # Refunds and credits are not calls: nothing of them in the endpoint rollups.
    assert sum(r.amount for r in EndpointDailyRollup.objects.for_license(lic)) == sum(
        e.amount for e in LedgerEntry.objects.for_license(lic).filter(kind="usage")
    )
    assert problems(JUNE, lic) == []

    month_close(acting_user=billing_user, month=JUNE)
    # A late call dated in closed June posts today, on today's local day and its endpoint.
    charge(lic, record(datetime(2025, 6, 30, 12, tzinfo=UTC), images=7, endpoint="/v1/late"))
    late = LedgerEntry.objects.for_license(lic).get(endpoint="/v1/late")
    assert late.original_occurred_at is not None
    local_day = late.occurred_at.astimezone(lic.tzinfo).date()
    assert EndpointDailyRollup.objects.for_license(lic).get(endpoint="/v1/late").day == local_day
    assert_ledger_consistent(lic)
    assert problems(JUNE, lic) == []
    today = late.occurred_at.astimezone(lic.tzinfo).date().replace(day=1)
    assert problems(today, lic) == []

    # The customer moves: every rollup follows to the new local days, still exact.
    lic.timezone = "Asia/Kolkata"
    license_save(acting_user=None, license=lic)
    assert_ledger_consistent(lic)
    assert (date(2025, 6, 5), "/v1/chat") in set(
        EndpointDailyRollup.objects.for_license(lic).values_list("day", "endpoint")
    )


def test_the_reconciliation_finds_an_endpoint_rollup_that_is_off_missing_or_orphaned(license_a):
    at = datetime(2025, 6, 10, 12, tzinfo=UTC)
    charge(
        license_a, record(at, images=10, endpoint="/v1/a"), record(at, images=5, endpoint="/v1/b")
    )
    assert problems(JUNE, license_a) == []
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_endpointdailyrollup SET amount = amount - 1 "
            "WHERE license_id = %s AND endpoint = '/v1/a'",
            [license_a.pk],
        )
        cursor.execute(
            "DELETE FROM billing_endpointdailyrollup WHERE license_id = %s AND endpoint = '/v1/b'",
            [license_a.pk],
        )
        cursor.execute(
            "INSERT INTO billing_endpointdailyrollup (license_id, day, endpoint, service, amount,"
            " tokens, images, api_calls, entries) VALUES (%s, '2025-06-11', '/v1/ghost',"
            " 'ai_images', -1, 0, 1, 1, 1)",
            [license_a.pk],
        )
    found = problems(JUNE, license_a)
    assert any(p.startswith("endpoint rollup 2025-06-10 /v1/a ai_images amount") for p in found)
    assert any(p.startswith("endpoint rollup 2025-06-10 /v1/b ai_images amount") for p in found)
    assert any(p.startswith("endpoint rollup 2025-06-11 /v1/ghost ai_images") for p in found)
    call_command("rebuild_rollups", "--license", license_a.key, stdout=io.StringIO())
    assert problems(JUNE, license_a) == []
    assert endpoint_rollups_stored(license_a) == endpoint_rollups_from_entries(license_a)


def test_history_from_before_the_endpoint_rollups_is_reported_until_rebuilt(license_a):
    """What migration 0014 leaves for a license that already had entries."""
    at = datetime(2025, 6, 10, 12, tzinfo=UTC)
    charge(license_a, record(at, images=10, endpoint="/v1/a"))
    # As before the table existed: no rows, and the license marked as not covered.
    EndpointDailyRollup.objects.for_license(license_a).delete()
    LicenseBalance.objects.for_license(license_a).update(endpoint_rollups_ready=False)
    assert problems(JUNE, license_a) == [f"{ENDPOINT_ROLLUPS_NOT_READY}: stored None, ledger None"]
    # Postings meanwhile still add to the table; the rebuild makes it whole and exact.
    charge(license_a, record(at + timedelta(days=1), images=3, endpoint="/v1/b"))
    # `make migrate` runs the rebuild for exactly the licenses not covered yet.
    other = LicenseFactory(key="EP-READY-0001")
    buy(other, "5")
    out = io.StringIO()
    call_command("rebuild_rollups", "--not-ready", stdout=out)
    assert license_a.key in out.getvalue() and other.key not in out.getvalue()
    balance = LicenseBalance.objects.for_license(license_a).get()
    assert balance.endpoint_rollups_ready
    assert problems(JUNE, license_a) == []
    assert_ledger_consistent(license_a)


def test_a_new_license_is_covered_from_its_first_posting(db):
    lic = LicenseFactory(key="EP-NEW-0001")
    buy(lic, "5")
    assert LicenseBalance.objects.for_license(lic).get().endpoint_rollups_ready
