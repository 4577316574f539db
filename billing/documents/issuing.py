"""Issuing documents, inside the transaction that posts their ledger entry: an invoice for
each purchase (`invoice_issue`, from billing.purchases.services.purchase_record) and a
credit note for each purchase refund (`credit_note_issue`, from
billing.purchases.refunds.purchase_refund_record).

Gap-free numbers. A series' counter row (DocumentSeries, "INV-2026") is locked FOR UPDATE
and moved on in the posting's transaction, after the entry is posted: a purchase rolled
back takes its number back with it, and two purchases at the same instant wait for each
other's commit and get consecutive numbers. The lock is taken last, so it is held only for
the end of the posting.

Amounts are in cents, as money is paid. Prices include tax: the document's total is what
was paid (or refunded), split into net and the tax of the customer's country at issue
(INVOICE_TAX_RATES, 0 by default). The email goes after the commit (billing.documents.emails)."""

from decimal import ROUND_HALF_UP, Decimal
from functools import partial

from django.conf import settings
from django.utils import timezone

from accounts.models import License
from billing.documents.details import billing_details_snapshot
from billing.documents.models import Document, DocumentSeries
from billing.documents.taxid import VAT_COUNTRIES
from billing.handoffs import document_email_enqueue, handoff_after_commit
from billing.ledger.models import LedgerEntry


def cents_of(amount: Decimal) -> int:
    """Money as paid: whole cents (a purchase recorded by hand may carry more places)."""
    return int((abs(amount) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def number_allocate(prefix: str) -> tuple[str, int, str]:
    """The next number of this year's series `prefix`: (series, sequence, number). Call it
    inside the posting's transaction: the counter row stays locked until it ends."""
    series = f"{prefix}-{timezone.localdate():%Y}"
    # The year's first document makes its row; a second transaction inserting it at the
    # same moment waits for the first and then finds it (no duplicate, no gap).
    DocumentSeries.objects.bulk_create([DocumentSeries(series=series)], ignore_conflicts=True)
    counter = DocumentSeries.objects.select_for_update().get(series=series)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return series, counter.last_number, f"{series}-{counter.last_number:06d}"


def tax_rate_for(country: str) -> Decimal:
    return Decimal(str(settings.INVOICE_TAX_RATES.get(country, "0")))


def _split(total_cents: int, rate: Decimal) -> tuple[int, int]:
    """(net, tax) of a total that includes tax at `rate` percent."""
    if not rate:
        return total_cents, 0
    net = int(
        (Decimal(total_cents) * 100 / (100 + rate)).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    )
    return net, total_cents - net


def _issue(
    *,
    license: License,
    entry: LedgerEntry,
    kind: str,
    prefix: str,
    description: str,
    payment_method: str,
    invoice: Document | None = None,
) -> Document:
    billed_to = billing_details_snapshot(license)
    country = billed_to["country"]
    rate = invoice.tax_rate if invoice is not None else tax_rate_for(country)
    total = cents_of(entry.amount)
    net, tax = _split(total, rate)
    series, sequence, number = number_allocate(prefix)
    document = Document.objects.create(
        license=license,
        kind=kind,
        series=series,
        sequence=sequence,
        number=number,
        entry=entry,
        invoice=invoice,
        issued_at=timezone.now(),
        billed_to=billed_to,
        lines=[{"description": description, "amount_cents": net}],
        net_cents=net,
        tax_rate=rate,
        tax_label=("VAT" if country in VAT_COUNTRIES else "Tax") if rate else "",
        tax_cents=tax,
        total_cents=total,
        payment_method=payment_method,
    )
    handoff_after_commit(partial(document_email_enqueue, document_id=document.pk))
    return document


def invoice_issue(*, entry: LedgerEntry, payment_method: str) -> Document:
    """The invoice of a purchase just posted (in its transaction)."""
    return _issue(
        license=entry.license,
        entry=entry,
        kind=Document.Kind.INVOICE,
        prefix=settings.INVOICE_SERIES,
        description=f"Prepaid credit for the AI API service: {entry.description}",
        payment_method=payment_method,
    )


def credit_note_issue(*, refund: LedgerEntry, purchase: LedgerEntry) -> Document:
    """The credit note of a purchase refund just posted (in its transaction), linked to the
    purchase's invoice (none for a purchase made before invoices were issued)."""
    invoice = Document.objects.filter(entry=purchase).first()
    return _issue(
        license=refund.license,
        entry=refund,
        kind=Document.Kind.CREDIT_NOTE,
        prefix=settings.CREDIT_NOTE_SERIES,
        description=(
            f"Refund of invoice {invoice.number}"
            if invoice
            else f"Refund of purchase #{purchase.pk}"
        ),
        payment_method=invoice.payment_method if invoice else "Refunded to the card",
        invoice=invoice,
    )
