"""Receipts of card purchases: the facts once (`receipt_facts`), shown as a page and as a
PDF (billing.documents.layout, the page invoices use too)."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from billing.documents.layout import DocumentPage
from billing.ledger.selectors import refunded_total_for_entry
from billing.money import format_money
from payments.models import Payment
from portal.moments import format_local_time


@dataclass(frozen=True)
class ReceiptFacts:
    number: str
    date: str
    license_name: str
    license_key_end: str
    amount: str
    card: str
    description: str
    intent_id: str
    refunded: str
    seller_name: str
    seller_address: str
    seller_tax_id: str


def receipt_facts(payment: Payment) -> ReceiptFacts:
    license = payment.license
    entry = payment.ledger_entry
    if entry is None or payment.credited_at is None:
        raise ValueError(f"payment {payment.pk} is not credited: it has no receipt")
    refunded = -refunded_total_for_entry(entry)
    return ReceiptFacts(
        number=payment.receipt_number or "",
        date=format_local_time(payment.credited_at, license.timezone),
        license_name=license.name,
        license_key_end=license.key[-4:],
        amount=format_money(entry.amount),
        card=payment.card_label or "Card",
        description=entry.description,
        intent_id=payment.intent_id or "",
        refunded=format_money(refunded) if refunded > Decimal("0") else "",
        seller_name=settings.SELLER_NAME,
        seller_address=settings.SELLER_ADDRESS,
        seller_tax_id=settings.SELLER_TAX_ID,
    )


def receipt_pdf(payment: Payment) -> bytes:
    facts = receipt_facts(payment)
    page = DocumentPage(
        f"Receipt {facts.number}",
        (facts.seller_name, facts.seller_address, f"Tax ID: {facts.seller_tax_id}"),
    )
    rows = [
        ("Receipt number", facts.number),
        ("Date", facts.date),
        ("License", f"{facts.license_name} (key ending {facts.license_key_end})"),
        ("Paid with", facts.card),
        ("Description", facts.description),
        ("Payment reference", facts.intent_id),
    ]
    if facts.refunded:
        rows.append(("Refunded to the card", facts.refunded))
    page.rows(rows)
    page.total("Amount paid", f"{facts.amount} USD")
    page.note(
        "Credits for the AI API service, added to the license's prepaid balance. "
        "Keep this receipt for your records."
    )
    return page.output()
