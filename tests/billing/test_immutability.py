"""Invariant 2: ledger entries are never updated or deleted, whoever tries — the ORM,
a queryset, or raw SQL. The database refuses; a mistake is corrected by a new entry.
Prices in effect are never rewritten either, and refunds past their charge are refused
by the database even when inserted behind the services' back."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from billing.models import LedgerEntry, Price
from tests.ledger import T0, buy, record_usage, usage_entry

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(license_a):
    return buy(license_a, "10.00", "pay_1").entry


def refused(fn):
    with pytest.raises(IntegrityError, match=r"append-only|never edited"), transaction.atomic():
        fn()


def raw(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_orm_save_of_an_entry_is_refused(entry):
    entry.amount = Decimal("1000.00")
    refused(entry.save)
    assert LedgerEntry.objects.get(pk=entry.pk).amount == Decimal("10.000000")


def test_orm_delete_of_an_entry_is_refused(entry):
    refused(entry.delete)
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_queryset_update_and_delete_are_refused(entry):
    refused(lambda: LedgerEntry.objects.filter(pk=entry.pk).update(amount=F("amount") * 2))
    refused(lambda: LedgerEntry.objects.all().delete())
    assert LedgerEntry.objects.get(pk=entry.pk).amount == Decimal("10.000000")


def test_raw_sql_update_and_delete_are_refused(entry):
    refused(lambda: raw("UPDATE billing_ledgerentry SET amount = 99 WHERE id = %s", [entry.pk]))
    refused(lambda: raw("UPDATE billing_ledgerentry SET description = 'oops'"))
    refused(lambda: raw("DELETE FROM billing_ledgerentry WHERE id = %s", [entry.pk]))
    stored = LedgerEntry.objects.get(pk=entry.pk)
    assert (stored.amount, stored.description) == (Decimal("10.000000"), "Credit purchase")


def test_a_price_in_effect_is_never_edited_or_deleted():
    price = Price.objects.filter(service="ai_data").order_by("effective_from").first()
    assert price is not None  # the default prices come with the migrations
    price.unit_price = Decimal("0")
    refused(price.save)
    refused(price.delete)
    refused(lambda: raw("UPDATE billing_price SET unit_price = 0"))
    assert Price.objects.get(pk=price.pk).unit_price == Decimal("0.000000600000")


def test_a_scheduled_price_can_be_withdrawn_but_not_edited():
    later = Price.objects.create(
        service="ai_data",
        unit_price=Decimal("0.000001"),
        effective_from=timezone.now() + timedelta(days=7),
    )
    refused(lambda: Price.objects.filter(pk=later.pk).update(unit_price=Decimal("0.000002")))
    later.delete()  # not yet in effect, so nothing was charged at it
    assert not Price.objects.filter(pk=later.pk).exists()


def _raw_refund(license, charge, amount, key):
    raw(
        """INSERT INTO billing_ledgerentry (license_id, kind, service, amount, tokens, images,
               api_calls, description, occurred_at, recorded_at, external_id, refund_of_id,
               reason)
           VALUES (%s, 'refund', %s, %s, 0, 0, 0, '', now(), now(), %s, %s, 'raw')""",
        [license.pk, charge.service, amount, key, charge.pk],
    )


def test_the_database_refuses_refunds_past_the_charge_even_in_raw_sql(license_a):
    record_usage(license_a, "c1", completion_tokens=1_000_000)  # $1.000000
    charge = usage_entry(license_a, "c1", "ai_data_completion")
    _raw_refund(license_a, charge, "0.700000", "raw-1")
    with (
        pytest.raises(IntegrityError, match="exceed the charge"),
        transaction.atomic(),
    ):
        _raw_refund(license_a, charge, "0.300001", "raw-2")
    _raw_refund(license_a, charge, "0.300000", "raw-3")
    assert sum(e.amount for e in LedgerEntry.objects.filter(refund_of=charge)) == Decimal(1)


def test_the_database_refuses_a_refund_of_another_license_charge(license_a, license_b):
    record_usage(license_a, "c1", input_tokens=1_000_000)
    charge = usage_entry(license_a, "c1")
    with (
        pytest.raises(IntegrityError, match="not a usage charge of this license"),
        transaction.atomic(),
    ):
        _raw_refund(license_b, charge, "0.1", "raw-x")
    purchase = buy(license_a, "5", "pay_9").entry
    with pytest.raises(IntegrityError, match="not a usage charge"), transaction.atomic():
        raw(
            """INSERT INTO billing_ledgerentry (license_id, kind, service, amount, tokens,
                   images, api_calls, description, occurred_at, recorded_at, external_id,
                   refund_of_id, reason)
               VALUES (%s, 'refund', '', 1, 0, 0, 0, '', now(), now(), 'raw-p', %s, 'raw')""",
            [license_a.pk, purchase.pk],
        )


@pytest.mark.parametrize(
    ("kind", "amount", "service"),
    [("purchase", "-1", ""), ("refund", "0", ""), ("usage", "0.5", "ai_data"), ("usage", "-1", "")],
)
def test_signs_and_services_per_kind_are_database_constraints(license_a, kind, amount, service):
    with pytest.raises(IntegrityError), transaction.atomic():
        raw(
            """INSERT INTO billing_ledgerentry (license_id, kind, service, amount, tokens,
                   images, api_calls, description, occurred_at, recorded_at, external_id,
                   reason)
               VALUES (%s, %s, %s, %s, 0, 0, 0, '', %s, now(), 'x', 'r')""",
            [license_a.pk, kind, service, amount, T0],
        )
