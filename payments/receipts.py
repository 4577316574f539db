"""Receipts of card purchases: the facts once (`receipt_facts`), shown as a page and as a
PDF (fpdf2: pure Python, no system libraries)."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from fpdf import FPDF

from billing.ledger.selectors import refunded_total_for_entry
from billing.money import format_money
from payments.models import Payment


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
    local = timezone.localtime(payment.credited_at, license.tzinfo)
    refunded = -refunded_total_for_entry(entry)
    return ReceiptFacts(
        number=payment.receipt_number or "",
        date=f"{local:%B} {local.day}, {local:%Y %H:%M} ({license.timezone})",
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


def _latin1(text: str) -> str:
    """The PDF core fonts speak Latin-1: anything else becomes '?' rather than failing."""
    return text.replace("•", "*").encode("latin-1", "replace").decode("latin-1")


def receipt_pdf(payment: Payment) -> bytes:
    facts = receipt_facts(payment)
    pdf = FPDF(format="A4")
    pdf.set_title(f"Receipt {facts.number}")
    pdf.set_creator("Token & Credit Portal")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 12, "Receipt", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for line in (facts.seller_name, facts.seller_address, f"Tax ID: {facts.seller_tax_id}"):
        pdf.cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
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
    for label, value in rows:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(50, 7, _latin1(label))
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 7, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_draw_color(180, 180, 180)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(50, 10, "Amount paid")
    pdf.cell(0, 10, _latin1(f"{facts.amount} USD"), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.ln(6)
    pdf.multi_cell(
        0,
        5,
        "Credits for the AI API service, added to the license's prepaid balance. "
        "Keep this receipt for your records.",
    )
    return bytes(pdf.output())
