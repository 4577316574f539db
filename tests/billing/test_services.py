"""The billing services: the only way money moves. Each test states what the billing team
or a customer relies on: exactly-once charging, idempotent purchases and refunds, the
refund ceiling, prices by date, and balances that always equal their entries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditEvent, License
from accounts.services import license_save
from billing.charges.services import UsageRecord, usage_drafts, usage_record_batch
from billing.models import LedgerEntry, Price
from billing.prices.selectors import price_book_get
from billing.prices.services import price_add
from billing.refunds.services import refund_issue, refundable_amount
from portal.exceptions import ApplicationError
from tests.ledger import (
    T0,
    assert_ledger_consistent,
    buy,
    record_usage,
    usage_entry,
)

pytestmark = pytest.mark.django_db


def rec(record_id, at=T0, **q):
    return UsageRecord(id=record_id, occurred_at=at, **q)


# --- purchases --------------------------------------------------------------------------


def test_the_same_payment_reference_twice_records_one_purchase(license_a, billing_user):
    first = buy(license_a, "25.00", "pay_1", acting_user=billing_user)
    again = buy(license_a, "25.00", "pay_1", acting_user=billing_user)
    assert first.created and not again.created
    assert again.entry.pk == first.entry.pk
    assert LedgerEntry.objects.for_license(license_a).count() == 1
    license_a.balance.refresh_from_db()
    assert license_a.balance.balance == Decimal("25.000000")
    assert AuditEvent.objects.filter(action="purchase.record", actor=billing_user).count() == 1
    assert_ledger_consistent(license_a)


def test_a_payment_reference_reused_for_another_amount_is_refused(license_a):
    buy(license_a, "25.00", "pay_1")
    with pytest.raises(ApplicationError, match="already used"):
        buy(license_a, "30.00", "pay_1")
    assert LedgerEntry.objects.for_license(license_a).count() == 1


@pytest.mark.parametrize(
    ("amount", "field"),
    [("0", "amount"), ("-5", "amount"), ("1.0000001", "amount")],
)
def test_a_bad_purchase_amount_is_refused_not_rounded(license_a, amount, field):
    with pytest.raises(ApplicationError) as exc:
        buy(license_a, amount, "pay_x")
    assert exc.value.field == field
    assert not LedgerEntry.objects.exists()


def test_a_purchase_needs_a_payment_reference(license_a):
    with pytest.raises(ApplicationError) as exc:
        buy(license_a, "5", "  ")
    assert exc.value.field == "external_id"


# --- usage ------------------------------------------------------------------------------


def test_a_usage_record_is_charged_once_across_batches_and_within_one(license_a):
    batch = [rec("r1", input_tokens=1000, images=2), rec("r1", input_tokens=1000, images=2)]
    first = usage_record_batch(license=license_a, records=batch)
    again = usage_record_batch(license=license_a, records=[rec("r1", input_tokens=1000, images=2)])
    assert (first.records_charged, first.records_duplicate, first.entries_created) == (1, 1, 2)
    assert (again.records_charged, again.records_duplicate, again.entries_created) == (0, 1, 0)
    assert first.amount == Decimal("-0.000800")  # 1000 × 0.6µ + 2 × 100µ
    assert again.amount == 0
    entries = LedgerEntry.objects.for_license(license_a)
    assert entries.count() == 2
    assert sorted(entries.values_list("external_id", flat=True)) == [
        "r1:ai_data",
        "r1:ai_images",
    ]
    license_a.balance.refresh_from_db()
    assert license_a.balance.balance == Decimal("-0.000800")
    assert license_a.balance.api_calls == 1  # one call, however many services it used
    assert_ledger_consistent(license_a)


def test_a_batch_of_new_and_already_charged_records_charges_only_the_new_ones(license_a):
    # The posting tries a plain INSERT first; an external id already in the ledger makes
    # it fail, and the batch is posted again skipping those (billing.ledger.posting.post_entries).
    usage_record_batch(license=license_a, records=[rec("r1", input_tokens=1000)])
    mixed = usage_record_batch(
        license=license_a,
        records=[rec("r0", images=1), rec("r1", input_tokens=1000), rec("r2", images=3)],
    )
    assert (mixed.records_charged, mixed.records_duplicate, mixed.entries_created) == (2, 1, 2)
    assert mixed.amount == Decimal("-0.000400")  # 4 images at $0.0001
    assert LedgerEntry.objects.for_license(license_a).count() == 3
    license_a.balance.refresh_from_db()
    assert license_a.balance.balance == Decimal("-0.001000")
    assert license_a.balance.api_calls == 3
    assert_ledger_consistent(license_a)


def test_a_usage_records_text_is_stored_as_sent(license_a):
    # The drafts travel to the posting statement as COPY rows (text, psycopg's escaping):
    # tabs, newlines, backslashes, quotes, a "\N" and non-ASCII arrive as they were.
    endpoint, request_id = '/v1/caf\u00e9\\n\\t\t\n "x" \\N \U0001f600', "req\\0'1\r"
    usage_record_batch(
        license=license_a,
        records=[rec("r\\1", input_tokens=10, endpoint=endpoint, request_id=request_id)],
    )
    entry = LedgerEntry.objects.for_license(license_a).get()
    assert (entry.external_id, entry.endpoint, entry.request_id) == (
        "r\\1:ai_data",
        endpoint,
        request_id,
    )
    assert entry.description == f"{endpoint} ({request_id})"


def test_usage_is_recorded_past_zero(license_a):
    buy(license_a, "0.000100", "pay_small")
    result = record_usage(license_a, "big", completion_tokens=1_000_000)
    assert result.balance_after == Decimal("-0.999900")
    license_a.balance.refresh_from_db()
    assert license_a.balance.balance == Decimal("-0.999900")


def test_a_failed_call_counts_as_an_api_call_at_no_charge(license_a):
    usage_record_batch(license=license_a, records=[rec("f1", status="error")])
    entry = usage_entry(license_a, "f1")
    assert (entry.amount, entry.api_calls, entry.tokens) == (Decimal("0"), 1, 0)
    license_a.balance.refresh_from_db()
    assert license_a.balance.api_calls == 1
    assert_ledger_consistent(license_a)


def test_the_same_record_id_on_two_licenses_is_two_charges(license_a, license_b):
    record_usage(license_a, "shared", input_tokens=10)
    record_usage(license_b, "shared", input_tokens=10)
    assert LedgerEntry.objects.for_license(license_a).count() == 1
    assert LedgerEntry.objects.for_license(license_b).count() == 1


# --- prices by date ---------------------------------------------------------------------


def test_usage_is_charged_at_the_price_in_effect_when_it_occurred(license_a):
    change = T0 + timedelta(hours=1)
    Price.objects.create(service="ai_data", unit_price=Decimal("0.000002"), effective_from=change)
    usage_record_batch(
        license=license_a,
        records=[
            rec("before", at=change - timedelta(microseconds=1), input_tokens=1000),
            rec("at", at=change, input_tokens=1000),
            rec("after", at=change + timedelta(days=30), input_tokens=1000),
        ],
    )
    assert usage_entry(license_a, "before").amount == Decimal("-0.000600")  # $0.60 / 1M
    assert usage_entry(license_a, "at").amount == Decimal("-0.002000")  # $2.00 / 1M
    assert usage_entry(license_a, "after").amount == Decimal("-0.002000")


def test_usage_without_a_price_in_effect_is_refused_whole(license_a):
    with pytest.raises(ApplicationError, match="No price"):
        usage_record_batch(
            license=license_a,
            records=[
                rec("ok", input_tokens=1),
                rec("old", at=T0.replace(year=2019), input_tokens=1),
            ],
        )
    assert not LedgerEntry.objects.exists()


def test_a_new_price_is_added_from_a_moment_on_and_audited(billing_user):
    start = timezone.now() + timedelta(days=1)
    price = price_add(
        acting_user=billing_user,
        service="ai_images",
        unit_price=Decimal("0.00008"),
        effective_from=start,
    )
    assert price.created_by == billing_user
    event = AuditEvent.objects.get(action="price.add")
    assert event.actor == billing_user
    assert event.changes["unit_price"] == "0.00008"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"effective_from_delta": -timedelta(minutes=1)}, "effective_from"),
        ({"unit_price": Decimal("-0.1")}, "unit_price"),
        ({"unit_price": Decimal("0.0000000000001")}, "unit_price"),
        ({"service": "ai_video"}, "service"),
    ],
)
def test_a_bad_price_is_refused_with_its_field(billing_user, kwargs, field):
    delta = kwargs.pop("effective_from_delta", timedelta(days=1))
    args = {
        "service": "ai_data",
        "unit_price": Decimal("0.000001"),
        "effective_from": timezone.now() + delta,
        **kwargs,
    }
    before = Price.objects.count()
    with pytest.raises(ApplicationError) as exc:
        price_add(acting_user=billing_user, **args)
    assert exc.value.field == field
    assert Price.objects.count() == before
    assert not AuditEvent.objects.filter(action="price.add").exists()


# --- refunds ----------------------------------------------------------------------------


@pytest.fixture
def charge(license_a):
    """A $1.000000 completion charge on license A."""
    record_usage(license_a, "c1", completion_tokens=1_000_000)
    return usage_entry(license_a, "c1", "ai_data_completion")


def refund(license, user, amount, key, charge=None, reason="customer reported a bug"):
    return refund_issue(
        acting_user=user,
        license=license,
        amount=Decimal(amount),
        reason=reason,
        idempotency_key=key,
        refund_of=charge,
    )


def test_a_partial_refund_names_who_and_why_and_is_audited(license_a, billing_user, charge):
    result = refund(license_a, billing_user, "0.25", "k-1", charge)
    entry = result.entry
    assert result.created
    assert (entry.kind, entry.service, entry.amount) == ("refund", charge.service, Decimal("0.25"))
    assert entry.refund_of_id == charge.pk
    assert entry.created_by == billing_user
    assert entry.reason == "customer reported a bug"
    assert refundable_amount(charge) == Decimal("0.750000")
    event = AuditEvent.objects.get(action="refund.issue")
    assert (event.actor, event.license, event.reason) == (
        billing_user,
        license_a,
        "customer reported a bug",
    )
    license_a.balance.refresh_from_db()
    assert license_a.balance.total_refunded == Decimal("0.25")
    assert_ledger_consistent(license_a)


def test_refunds_of_a_charge_never_exceed_it(license_a, billing_user, charge):
    refund(license_a, billing_user, "0.600000", "k-1", charge)
    with pytest.raises(ApplicationError, match=r"At most \$0.400000") as exc:
        refund(license_a, billing_user, "0.400001", "k-2", charge)
    assert exc.value.field == "amount"
    refund(license_a, billing_user, "0.400000", "k-3", charge)  # exactly the rest is fine
    with pytest.raises(ApplicationError):
        refund(license_a, billing_user, "0.000001", "k-4", charge)
    refunded = sum(e.amount for e in LedgerEntry.objects.filter(refund_of=charge))
    assert refunded == Decimal("1.000000")
    assert AuditEvent.objects.filter(action="refund.issue").count() == 2
    assert_ledger_consistent(license_a)


def test_a_double_submitted_refund_records_one(license_a, billing_user, charge):
    first = refund(license_a, billing_user, "1.000000", "same-key", charge)
    again = refund(license_a, billing_user, "1.000000", "same-key", charge)
    assert first.created and not again.created
    assert again.entry.pk == first.entry.pk
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    assert AuditEvent.objects.filter(action="refund.issue").count() == 1


def test_an_idempotency_key_reused_for_a_different_refund_is_refused(
    license_a, billing_user, charge
):
    refund(license_a, billing_user, "0.10", "key-1", charge)
    with pytest.raises(ApplicationError, match="already used"):
        refund(license_a, billing_user, "0.20", "key-1", charge)
    with pytest.raises(ApplicationError, match="already used"):
        refund(license_a, billing_user, "0.10", "key-1")  # same key as goodwill
    assert LedgerEntry.objects.filter(kind="refund").count() == 1


def test_a_goodwill_credit_needs_a_reason_and_credits_the_license(license_a, billing_user):
    with pytest.raises(ApplicationError) as exc:
        refund(license_a, billing_user, "5", "gw-1", reason="   ")
    assert exc.value.field == "reason"
    result = refund(license_a, billing_user, "5", "gw-2", reason="outage on June 3")
    assert result.entry.refund_of is None
    assert result.entry.service == ""
    license_a.balance.refresh_from_db()
    assert license_a.balance.balance == Decimal("5")
    assert_ledger_consistent(license_a)


def test_only_a_usage_charge_of_the_same_license_can_be_refunded(
    license_a, license_b, billing_user, charge
):
    purchase = buy(license_a, "10", "pay_1").entry
    with pytest.raises(ApplicationError, match="Only a usage charge"):
        refund(license_a, billing_user, "1", "k-p", purchase)
    with pytest.raises(ApplicationError, match="Only a usage charge"):
        refund(license_b, billing_user, "0.5", "k-b", charge)
    assert not LedgerEntry.objects.filter(kind="refund").exists()


def test_refund_amounts_are_never_rounded(license_a, billing_user, charge):
    with pytest.raises(ApplicationError) as exc:
        refund(license_a, billing_user, "0.1234567", "k-r", charge)
    assert exc.value.field == "amount"


# --- rollups and timezones --------------------------------------------------------------


def test_rollups_follow_the_license_timezone_even_with_a_stale_license_object(license_a):
    """A sync holding a License loaded before a timezone change must not roll its
    entries up into the old timezone's days after the change rebuilt the rollups."""
    stale = License.objects.get(pk=license_a.pk)  # still UTC
    fresh = License.objects.get(pk=license_a.pk)
    fresh.timezone = "Asia/Tokyo"
    license_save(acting_user=None, license=fresh)
    # 20:00 UTC on June 10 is June 11 in Tokyo.
    record_usage(stale, "late", at=T0.replace(hour=20), input_tokens=100)
    assert_ledger_consistent(fresh)
    assert {key[0].isoformat() for key in license_rollup_keys(fresh)} == {"2025-06-11"}


def license_rollup_keys(license):
    from billing.models import DailyRollup

    return DailyRollup.objects.for_license(license).values_list("day", "kind", "service")


def test_mixed_activity_keeps_every_total_equal_to_its_entries(license_a, billing_user):
    buy(license_a, "100", "pay_1", at=T0 - timedelta(days=3))
    usage_record_batch(
        license=license_a,
        records=[
            rec(f"m{i}", at=T0 + timedelta(hours=i * 7), input_tokens=1234 * i, cached_tokens=5 * i,
                completion_tokens=77 * i, images=i % 3)
            for i in range(1, 40)
        ],
    )  # fmt: skip
    c = usage_entry(license_a, "m7", "ai_data")
    refund(license_a, billing_user, str(-c.amount), "rf-1", c)
    refund(license_a, billing_user, "1.5", "gw-1", reason="goodwill")
    assert_ledger_consistent(license_a)


def test_a_double_submitted_goodwill_credit_records_one(license_a, billing_user):
    first = refund(license_a, billing_user, "2.5", "gw-same", reason="sorry")
    again = refund(license_a, billing_user, "2.5", "gw-same", reason="sorry")
    assert first.created and not again.created
    license_a.balance.refresh_from_db()
    assert license_a.balance.balance == Decimal("2.5")
    assert AuditEvent.objects.filter(action="refund.issue").count() == 1


def test_rebuilding_rollups_twice_changes_nothing(license_a):
    from billing.ledger.rebuild import rollups_rebuild
    from billing.models import DailyRollup

    for i in range(5):
        record_usage(license_a, f"r{i}", at=T0 + timedelta(hours=9 * i), input_tokens=100 * i)
    before = set(
        DailyRollup.objects.for_license(license_a).values_list(
            "day", "kind", "service", "amount", "entries"
        )
    )
    rollups_rebuild(license=license_a)
    rollups_rebuild(license=license_a)
    after = set(
        DailyRollup.objects.for_license(license_a).values_list(
            "day", "kind", "service", "amount", "entries"
        )
    )
    assert after == before
    assert_ledger_consistent(license_a)


def test_the_same_price_twice_at_one_moment_is_refused(billing_user):
    start = timezone.now() + timedelta(hours=2)
    price_add(
        acting_user=billing_user,
        service="ai_data",
        unit_price=Decimal("0.000001"),
        effective_from=start,
    )
    with pytest.raises(ApplicationError, match="already starts") as exc:
        price_add(
            acting_user=billing_user,
            service="ai_data",
            unit_price=Decimal("0.000001"),
            effective_from=start,
        )
    assert exc.value.field == "effective_from"
    assert Price.objects.filter(effective_from=start).count() == 1


def test_usage_drafted_before_a_price_change_is_charged_at_the_price_in_effect(
    license_a, billing_user
):
    # A sync drafts a page's charges while the page before is posted; a price added in
    # between (from a moment before the record) must be the one the record is charged at.
    at = timezone.now() + timedelta(minutes=30)  # within the upstream's allowed clock skew
    records = [rec("r1", at=at, input_tokens=1_000_000), rec("r1", at=at, input_tokens=1_000_000)]
    drafted = usage_drafts(records, prices=price_book_get())
    price_add(
        acting_user=billing_user,
        service="ai_data",
        unit_price=Decimal("0.000009"),
        effective_from=timezone.now() + timedelta(minutes=1),
    )
    result = usage_record_batch(license=license_a, records=drafted)
    assert (result.records_charged, result.records_duplicate) == (1, 1)
    assert usage_entry(license_a, "r1").amount == Decimal("-9.000000")
    assert_ledger_consistent(license_a)
