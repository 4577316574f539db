"""An invoice or credit note as the customer reads it: its facts once (`document_facts`),
for the Documents page, the email and the PDF (drawn with billing.documents.layout)."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from billing.documents.layout import DocumentPage
from billing.documents.models import Document
from billing.money import format_money


def cents_text(cents: int) -> str:
    """ "$25.00": a document's amounts are in cents, as money is paid."""
    return format_money(Decimal(cents) / 100, 2)


@dataclass(frozen=True)
class DocumentFacts:
    title: str  # "Invoice" / "Credit note"
    number: str
    issued: str  # the date in the license's timezone, which it names
    license: str
    billed_to: list[str]  # name, address lines, country
    tax_id: str
    po_number: str
    payment_method: str
    related: tuple[str, str] | None  # ("Credit notes", "CN-…") / ("Invoice", "INV-…")
    lines: list[tuple[str, str]]
    tax: tuple[str, str] | None
    total: str


def document_facts(document: Document) -> DocumentFacts:
    license = document.license
    local = timezone.localtime(document.issued_at, license.tzinfo)
    billed = document.billed_to or {}
    billed_to = [billed.get("legal_name") or license.name]
    billed_to += [line for line in (billed.get("address") or "").splitlines() if line.strip()]
    if billed.get("country_name"):
        billed_to.append(str(billed["country_name"]))
    if document.kind == Document.Kind.INVOICE:
        notes = ", ".join(n.number for n in document.credit_notes.order_by("sequence"))
        related = ("Credit notes", notes) if notes else None
    else:
        related = ("Invoice", document.invoice.number) if document.invoice else None
    sign = -1 if document.kind == Document.Kind.CREDIT_NOTE else 1
    tax = None
    if document.tax_cents or document.tax_rate:
        tax = (
            f"{document.tax_label or 'Tax'} {document.tax_rate.normalize():f}%",
            cents_text(sign * document.tax_cents),
        )
    return DocumentFacts(
        title=document.get_kind_display(),
        number=document.number,
        issued=f"{local:%B} {local.day}, {local:%Y} ({license.timezone})",
        license=f"{license.name} (key ending {license.key[-4:]})",
        billed_to=billed_to,
        tax_id=str(billed.get("tax_id") or ""),
        po_number=str(billed.get("po_number") or ""),
        payment_method=document.payment_method,
        related=related,
        lines=[
            (line["description"], cents_text(sign * line["amount_cents"]))
            for line in document.lines
        ],
        tax=tax,
        total=f"{cents_text(sign * document.total_cents)} {document.currency.upper()}",
    )


def document_pdf(document: Document) -> bytes:
    facts = document_facts(document)
    page = DocumentPage(
        f"{facts.title} {facts.number}",
        (settings.SELLER_NAME, settings.SELLER_ADDRESS, f"Tax ID: {settings.SELLER_TAX_ID}"),
    )
    rows = [
        (f"{facts.title} number", facts.number),
        ("Issue date", facts.issued),
        ("Billed to", "\n".join(facts.billed_to)),
    ]
    if facts.tax_id:
        rows.append(("Tax ID", facts.tax_id))
    if facts.po_number:
        rows.append(("PO number / note", facts.po_number))
    paid = "Refunded to" if document.kind == Document.Kind.CREDIT_NOTE else "Payment method"
    rows += [("License", facts.license), (paid, facts.payment_method)]
    if facts.related:
        rows.append(facts.related)
    page.rows(rows)
    page.rule()
    page.amounts(facts.lines + ([facts.tax] if facts.tax else []))
    page.total(
        "Total refunded" if document.kind == Document.Kind.CREDIT_NOTE else "Total paid",
        facts.total,
    )
    page.note(
        "Prepaid credit for the AI API service; prices include tax. "
        "Keep this document for your records."
    )
    return page.output()
