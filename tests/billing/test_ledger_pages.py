"""The staff ledger of a license: keyset pages newest first, each entry with the running
balance after it, exact to the micro-dollar, whichever page is asked for."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.charges.services import UsageRecord, usage_record_batch
from billing.ledger.pages import ledger_entry_find, ledger_page, ledger_page_at
from billing.models import LedgerEntry, LicenseBalance
from billing.refunds.services import refund_issue
from tests.accounts.factories import LicenseFactory
from tests.ledger import buy, usage_entry

pytestmark = pytest.mark.django_db


@pytest.fixture
def tokyo(db):
    """A Tokyo license with 61 entries spread over a week of local days (some at the same
    instant, so the keyset's id tie-break matters)."""
    lic = LicenseFactory(key="TOKYO-00001", timezone="Asia/Tokyo")
    start = datetime(2025, 6, 1, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo
    buy(lic, "100", "first", at=start - timedelta(hours=1))
    records = [
        UsageRecord(
            id=f"rec-{i}",
            occurred_at=start + timedelta(hours=3 * (i // 2)),
            input_tokens=1000 * (i + 1),
            images=i % 3,
            request_id=f"req-{i}",
            endpoint="/v1/chat",
        )
        for i in range(40)
    ]
    usage_record_batch(license=lic, records=records)
    return lic


def expected_running(license):
    """Newest first: (id, balance after it), summed here in Python from oldest up."""
    entries = list(LedgerEntry.objects.for_license(license).order_by("occurred_at", "id"))
    total, out = Decimal(0), []
    for e in entries:
        total += e.amount
        out.append((e.id, total))
    return list(reversed(out))


def test_every_page_has_the_exact_running_balance(tokyo):
    expected = expected_running(tokyo)
    assert len(expected) > 60
    got: list[tuple[int, Decimal]] = []
    cursor: tuple[datetime, int] | None = None
    while True:
        page = ledger_page(license=tokyo, before=cursor, size=7)
        got.extend((row.id, row.running_balance) for row in page.rows)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert got == expected


def test_the_newest_entry_s_running_balance_is_the_balance(tokyo):
    page = ledger_page(license=tokyo)
    balance = LicenseBalance.objects.for_license(tokyo).get().balance
    assert page.rows[0].running_balance == balance
    assert len(page.rows) == 50 and page.next_cursor is not None


def test_one_query_a_page_whatever_the_depth(tokyo, django_assert_num_queries):
    deep = ledger_page(license=tokyo, size=40)
    with django_assert_num_queries(2):  # the page, and the refunds of its charges
        ledger_page(license=tokyo, before=deep.next_cursor, size=10)


def test_search_finds_an_entry_by_id_external_id_record_id_and_request_id(tokyo, billing_user):
    charge = usage_entry(tokyo, "rec-7")
    assert ledger_entry_find(license=tokyo, term=str(charge.pk)) == charge
    assert ledger_entry_find(license=tokyo, term=f"#{charge.pk}") == charge
    assert ledger_entry_find(license=tokyo, term="rec-7:ai_data") == charge
    assert ledger_entry_find(license=tokyo, term="rec-7") == charge
    by_request = ledger_entry_find(license=tokyo, term="req-7")
    assert by_request is not None and by_request.external_id.startswith("rec-7:")
    by_reference = ledger_entry_find(license=tokyo, term="first")
    assert by_reference is not None and by_reference.kind == "purchase"
    assert ledger_entry_find(license=tokyo, term="nope") is None
    other = LicenseFactory(key="OTHER-00001")
    assert ledger_entry_find(license=other, term=str(charge.pk)) is None
    page = ledger_page_at(license=tokyo, entry=charge)
    assert page.rows[0].id == charge.pk
    assert page.found is not None and page.found.id == charge.pk
    assert dict(expected_running(tokyo))[charge.pk] == page.rows[0].running_balance


def test_a_charge_links_to_its_refunds(tokyo, billing_user):
    charge = usage_entry(tokyo, "rec-39")
    refund = refund_issue(
        acting_user=billing_user, license=tokyo, amount=Decimal("0.001"), reason="slow",
        idempotency_key="k1", refund_of=charge,
    ).entry  # fmt: skip
    rows = {row.id: row for row in ledger_page(license=tokyo, size=100).rows}
    assert rows[charge.pk].refund_ids == [refund.pk]
    assert rows[refund.pk].refund_of_id == charge.pk
    assert (
        rows[rows[refund.pk].id].running_balance
        == LicenseBalance.objects.get(license=tokyo).balance
    )
