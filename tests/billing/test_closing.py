"""Month close: the billing team closes a month once it reconciles, and from then on its
figures never change (invariant 11). A late upstream record or a back-dated correction
is posted into the open month, keeping its own time as the call's time, and says so."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import AuditEvent
from billing.closing.services import (
    closed_figures_changed,
    month_close,
    month_is_closed,
    month_refuse_future,
    month_reopen,
)
from billing.models import ClosedMonth, DailyRollup, LedgerEntry
from billing.reconciliation.report import reconciliation_month
from billing.refunds.services import refund_issue
from portal.exceptions import ApplicationError
from tests.accounts.factories import LicenseFactory, UserFactory
from tests.ledger import (
    assert_ledger_consistent,
    buy,
    record_usage,
    usage_entry,
)

pytestmark = pytest.mark.django_db
JUNE = date(2025, 6, 1)


@pytest.fixture
def ny(db, billing_user):
    lic = LicenseFactory(key="NY-CLOSE-01", timezone="America/New_York")
    buy(lic, "50", "june-buy", at=datetime(2025, 6, 2, 15, tzinfo=lic.tzinfo))
    record_usage(lic, "u1", at=datetime(2025, 6, 20, 12, tzinfo=lic.tzinfo), input_tokens=10**6)
    refund_issue(
        acting_user=billing_user, license=lic, amount=Decimal("1"), reason="sorry",
        idempotency_key="gw-1",
    )  # fmt: skip
    return lic


def june_row(license):
    (row,) = [r for r in reconciliation_month(month=JUNE).rows if r.license_id == license.pk]
    return row


def test_billing_closes_a_reconciled_month_and_it_is_audited(ny, billing_user):
    closed = month_close(acting_user=billing_user, month=JUNE)
    assert month_is_closed(JUNE) and month_is_closed(date(2025, 5, 1))
    assert not month_is_closed(date(2025, 7, 1))
    totals = closed.figures["totals"]
    assert totals["purchases"] == "50.000000" and totals["usage"] == "0.600000"
    event = AuditEvent.objects.get(action="month.close")
    assert event.actor == billing_user and event.target == "2025-06"
    with pytest.raises(ApplicationError, match="already closed"):
        month_close(acting_user=billing_user, month=JUNE)


def test_a_late_record_dated_in_a_closed_month_posts_in_the_open_month(ny, billing_user):
    before = june_row(ny)
    closed = month_close(acting_user=billing_user, month=JUNE)
    called_at = datetime(2025, 6, 30, 23, 50, tzinfo=ny.tzinfo)  # June in New York
    started = timezone.now()
    result = record_usage(ny, "late-1", at=called_at, completion_tokens=2 * 10**6)
    assert result.records_charged == 1
    entry = usage_entry(ny, "late-1", "ai_data_completion")
    assert entry.original_occurred_at == called_at
    assert entry.occurred_at >= started  # posted now, in the open month
    assert "late: dated 2025-06-30 23:50 in closed June 2025" in entry.description
    # The closed month's figures are what they were at the close.
    after = june_row(ny)
    assert (after.opening, after.purchases, after.usage, after.refunds, after.credits) == (
        before.opening, before.purchases, before.usage, before.refunds, before.credits,
    )  # fmt: skip
    assert after.closing == before.closing and after.ok
    assert closed_figures_changed(closed, reconciliation_month(month=JUNE)) == []
    # The money is not lost: balance, totals and rollups hold it, on today's local day.
    assert_ledger_consistent(ny)
    today = timezone.localtime(entry.occurred_at, ny.tzinfo).date()
    assert DailyRollup.objects.for_license(ny).filter(day=today, kind="usage").exists()
    assert not DailyRollup.objects.for_license(ny).filter(day=date(2025, 6, 30)).exists()
    # The same record again is still charged once.
    assert (
        record_usage(ny, "late-1", at=called_at, completion_tokens=2 * 10**6).records_charged == 0
    )


def test_a_back_dated_purchase_is_posted_in_the_open_month(ny, billing_user):
    month_close(acting_user=billing_user, month=JUNE)
    buy(ny, "5", "backdated", at=datetime(2025, 6, 15, tzinfo=UTC))
    entry = LedgerEntry.objects.for_license(ny).get(external_id="backdated")
    assert entry.original_occurred_at == datetime(2025, 6, 15, tzinfo=UTC)
    assert entry.occurred_at > datetime(2025, 7, 1, tzinfo=UTC)
    assert june_row(ny).purchases == Decimal("50.000000")


def test_entries_after_the_close_boundary_keep_their_time(ny, billing_user):
    month_close(acting_user=billing_user, month=JUNE)
    july = datetime(2025, 7, 1, 0, 0, tzinfo=ny.tzinfo)  # the first moment of July, local
    record_usage(ny, "july-1", at=july, images=3)
    entry = usage_entry(ny, "july-1", "ai_images")
    assert entry.occurred_at == july and entry.original_occurred_at is None
    assert "late" not in entry.description


def test_a_month_that_does_not_reconcile_cannot_be_closed(ny, billing_user):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_licensebalance SET balance = 0 WHERE license_id = %s", [ny.pk]
        )
    with pytest.raises(ApplicationError, match="does not reconcile: 1 license"):
        month_close(acting_user=billing_user, month=JUNE)
    assert not ClosedMonth.objects.exists()


def test_a_future_or_unfinished_month_is_refused(billing_user):
    today = timezone.localdate()
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    with pytest.raises(ApplicationError, match="is in the future"):
        month_refuse_future(next_month)
    with pytest.raises(ApplicationError, match="is in the future"):
        month_close(acting_user=billing_user, month=next_month)
    with pytest.raises(ApplicationError, match="has not ended"):
        month_close(acting_user=billing_user, month=today.replace(day=1))
    assert not ClosedMonth.objects.exists()


def test_reopening_needs_a_superuser_and_a_reason_and_is_audited(ny, billing_user):
    month_close(acting_user=billing_user, month=JUNE)
    with pytest.raises(ApplicationError, match="superuser"):
        month_reopen(acting_user=billing_user, month=JUNE, reason="oops")
    root = UserFactory(email="root@portal.example", is_staff=True, is_superuser=True)
    with pytest.raises(ApplicationError, match="why"):
        month_reopen(acting_user=root, month=JUNE, reason="  ")
    month_reopen(acting_user=root, month=JUNE, reason="upstream resent June")
    assert not month_is_closed(JUNE)
    event = AuditEvent.objects.get(action="month.reopen")
    assert event.actor == root and event.reason == "upstream resent June"
    # Open again: a record dated in June is dated in June.
    at = datetime(2025, 6, 29, tzinfo=UTC)
    record_usage(ny, "resent", at=at, images=1)
    assert usage_entry(ny, "resent", "ai_images").occurred_at == at
    # And June can be closed again after it reconciles.
    month_close(acting_user=billing_user, month=JUNE)


def test_goodwill_is_reported_as_credit_apart_from_refunds(ny, billing_user):
    now = timezone.localdate()
    this_month = now.replace(day=1)
    charge = usage_entry(ny, "u1")
    refund_issue(
        acting_user=billing_user, license=ny, amount=Decimal("0.25"), reason="slow",
        idempotency_key="r-1", refund_of=charge,
    )  # fmt: skip
    (row,) = [r for r in reconciliation_month(month=this_month).rows if r.license_id == ny.pk]
    assert row.refunds == Decimal("0.250000")
    assert row.credits == Decimal("1.000000")
    assert row.closing == row.opening + row.purchases - row.usage + row.refunds + row.credits
