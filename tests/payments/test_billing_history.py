"""Issue 28: Billing history lists every money movement in or out but usage — a card
purchase, a purchase recorded by billing, a refund to the card, a goodwill credit, credit
that expired — each with a link to its transaction and, where it has one, to its
document's PDF (the invoice of a purchase, the credit note of a card refund); never
another license's."""

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from billing.credits.expiry import credits_expire
from billing.credits.services import credit_grant_issue
from billing.models import Document, LedgerEntry
from payments.autotopup import auto_topup_settings_update
from payments.models import Payment
from payments.services.paying import payment_start
from payments.services.refunds import payment_refund_issue
from tests.ledger import buy, record_usage
from tests.payments.helpers import save_card

pytestmark = pytest.mark.django_db

D = Decimal


def _line(body: str, entry_id: int) -> str:
    start = body.index(f'data-entry="{entry_id}"')
    return body[start:].split("</tr>", 1)[0]


def _url(name: str, license, **kwargs) -> str:
    return reverse(f"dashboard:{name}", kwargs={"license_id": license.public_id, **kwargs})


def test_billing_history_lists_each_movement_in_or_out_with_its_document(
    localstripe, license_a, license_b, member_a, member_b, billing_user, client
):
    now = timezone.now()
    credit_grant_issue(
        acting_user=billing_user, license=license_a, amount=D("2"), kind="promotional",
        reason="Spring promotion", idempotency_key="promo-1",
        expires_at=now + timedelta(minutes=1),
    )  # fmt: skip
    with time_machine.travel(now + timedelta(minutes=2), tick=False):
        assert len(credits_expire().expired) == 1
    expiry = LedgerEntry.objects.get(kind="expiry", license=license_a)
    save_card(localstripe, license_a, member_a)
    payment = payment_start(license=license_a, acting_user=member_a, amount=D("25"))
    assert payment.ledger_entry is not None
    purchase = payment.ledger_entry
    card_refund = payment_refund_issue(
        acting_user=billing_user, purchase=purchase, amount=D("4"),
        reason="Bought too much", idempotency_key="card-refund-1",
    ).entry  # fmt: skip
    goodwill = credit_grant_issue(
        acting_user=billing_user, license=license_a, amount=D("5"), kind="promotional",
        reason="Slow API week", idempotency_key="goodwill-1",
    ).entry  # fmt: skip
    paid = credit_grant_issue(
        acting_user=billing_user, license=license_a, amount=D("40"), kind="paid",
        reason="Bank transfer 7781", idempotency_key="paid-1",
    ).entry  # fmt: skip
    # Another license's purchase recorded by billing: never on Alpha's page.
    other = credit_grant_issue(
        acting_user=billing_user, license=license_b, amount=D("9"), kind="paid",
        reason="Bravo's transfer", idempotency_key="paid-b",
    ).entry  # fmt: skip
    assert goodwill is not None and paid is not None and other is not None
    invoice = Document.objects.get(entry=purchase)
    credit_note = Document.objects.get(entry=card_refund)
    paid_invoice = Document.objects.get(entry=paid)
    other_invoice = Document.objects.get(entry=other)

    client.force_login(member_a)
    body = unescape(client.get(_url("billing_history", license_a)).content.decode())

    def pdf_link(document: Document) -> str:
        href = _url("document_pdf", license_a, number=document.number)
        return f'<a href="{href}" data-testid="document-link">{document.number}</a>'

    def transaction_link(entry: LedgerEntry) -> str:
        return f'href="{_url("transaction", license_a, entry_id=entry.pk)}"'

    line = _line(body, purchase.pk)
    assert 'data-movement="purchase"' in line and "+$25.000000" in line
    assert pdf_link(invoice) in line and transaction_link(purchase) in line
    assert f"receipt {payment.receipt_number}" in line

    line = _line(body, paid.pk)
    assert 'data-movement="purchase"' in line and "+$40.000000" in line
    assert pdf_link(paid_invoice) in line and transaction_link(paid) in line
    assert "Bank transfer 7781" in line

    line = _line(body, card_refund.pk)
    assert 'data-movement="purchase_refund"' in line and "-$4.000000" in line
    assert pdf_link(credit_note) in line and transaction_link(card_refund) in line
    assert transaction_link(purchase) in line and "Bought too much" in line

    line = _line(body, goodwill.pk)
    assert 'data-movement="credit"' in line and "+$5.000000" in line
    assert "Slow API week" in line and transaction_link(goodwill) in line
    assert "document-link" not in line

    line = _line(body, expiry.pk)
    assert 'data-movement="expiry"' in line and "-$2.000000" in line
    assert transaction_link(expiry) in line and "document-link" not in line

    # Newest first (the expiry is dated when the credit expired, a minute from now), and
    # nothing else: the promotion's own grant is a credit too.
    entries = [int(x.split('"')[1]) for x in body.split("data-entry=")[1:]]
    expected = LedgerEntry.objects.filter(license=license_a).exclude(kind="usage")
    assert entries == list(expected.order_by("-occurred_at", "-id").values_list("id", flat=True))
    assert set(entries) >= {purchase.pk, paid.pk, card_refund.pk, goodwill.pk, expiry.pk}
    assert other.pk not in entries and other_invoice.number not in body
    assert "Bravo's transfer" not in body

    # Each document link opens the PDF; Bravo's number under Alpha's license is a 404.
    pdf = client.get(_url("document_pdf", license_a, number=credit_note.number))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert (
        client.get(_url("document_pdf", license_a, number=other_invoice.number)).status_code == 404
    )
    client.force_login(member_b)
    assert client.get(_url("billing_history", license_a)).status_code == 404


def test_an_auto_top_up_is_listed_as_a_purchase_with_its_invoice(
    localstripe, license_a, member_a, client_a, celery_eager, django_capture_on_commit_callbacks
):
    save_card(localstripe, license_a, member_a)
    buy(license_a, "6", "opening")
    auto_topup_settings_update(
        license=license_a, acting_user=member_a, enabled=True, threshold=D("5"),
        amount=D("10"), monthly_count=5, monthly_amount=D("500"),
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):  # $2 of usage: 6 -> 4, below $5
        record_usage(license_a, "rec-1", at=timezone.now(), completion_tokens=2_000_000)
    topup = Payment.objects.get(license=license_a, source="auto_topup")
    assert topup.ledger_entry is not None
    invoice = Document.objects.get(entry=topup.ledger_entry)
    body = unescape(client_a.get(_url("billing_history", license_a)).content.decode())
    line = _line(body, topup.ledger_entry.pk)
    assert 'data-movement="purchase"' in line and "+$10.000000" in line
    assert "Auto top-up" in line and f">{invoice.number}</a>" in line
    assert _url("document_pdf", license_a, number=invoice.number) in line


def test_billing_history_pages_through_everything_older_once_newest_first(
    license_a, member_a, billing_user, client, monkeypatch
):
    monkeypatch.setattr("payments.selectors.BILLING_HISTORY_PAGE", 3)
    now = timezone.now()
    same_moment = now - timedelta(hours=5)
    entries = [buy(license_a, "10", at=now - timedelta(hours=h)).entry for h in range(1, 5)]
    # Two lines at the same moment: the entry id orders them, and a page may end between.
    entries += [buy(license_a, "5", at=same_moment).entry for _ in range(2)]
    for n in range(2):
        credit = credit_grant_issue(
            acting_user=billing_user, license=license_a, amount=D("1"), kind="promotional",
            reason=f"Sorry {n}", idempotency_key=f"credit-page-{n}",
        ).entry  # fmt: skip
        assert credit is not None
        entries.append(credit)
    expected = [e.pk for e in sorted(entries, key=lambda e: (e.occurred_at, e.pk), reverse=True)]
    client.force_login(member_a)
    seen: list[int] = []
    url = _url("billing_history", license_a)
    pages = 0
    while url:
        body = client.get(url).content.decode()
        pages += 1
        seen += [int(x) for x in re.findall(r'<tr data-entry="(\d+)"', body)]
        older = re.search(r'href="(\?before=[^"]+)" data-testid="history-older"', body)
        url = _url("billing_history", license_a) + unescape(older.group(1)) if older else ""
    assert seen == expected
    assert pages == 3  # 8 lines, 3 a page
    assert client.get(_url("billing_history", license_a), {"before": "junk"}).status_code == 404
