"""A monthly statement as a PDF (fpdf2: pure Python, no system libraries)."""

from fpdf import FPDF

from billing.money import format_money
from billing.statements.selectors import Statement


def _cell_text(text: str) -> str:
    # The core fonts are Latin-1: the masked key's bullets become "*", anything else "?".
    text = text.replace("\u2022", "*").replace("\u2013", "-").replace("\u2212", "-")
    return text.encode("latin-1", "replace").decode("latin-1")


def statement_pdf(statement: Statement, *, generated: str) -> bytes:
    lic = statement.license
    f = statement.figures
    pdf = FPDF(format="A4")
    pdf.set_title(f"{lic.name} statement {statement.month:%Y-%m}")
    pdf.set_author("Token & Credit Portal")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _cell_text(f"Statement - {statement.title}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    lines = [
        f"{lic.name} (license {lic.masked_key})",
        f"Times and days in {lic.timezone}.",
    ]
    if statement.to_date:
        lines.append(f"This month is still running: figures to date ({generated}).")
    for line in lines:
        pdf.cell(0, 6, _cell_text(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    def row(label: str, value: str, bold: bool = False) -> None:
        pdf.set_font("Helvetica", "B" if bold else "", 11)
        pdf.cell(110, 8, _cell_text(label), border="B")
        pdf.cell(60, 8, value, border="B", align="R", new_x="LMARGIN", new_y="NEXT")

    row("Opening balance", format_money(f.opening), bold=True)
    row("+ Purchases", format_money(f.purchases))
    row("+ Credits", format_money(f.credits))
    row("+ Refunds", format_money(f.refunds))
    row("- Usage", format_money(f.usage))
    row(
        "Closing balance" + (" (to date)" if statement.to_date else ""),
        format_money(f.closing),
        True,
    )
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Usage by service", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 10)
    widths = (50, 30, 40, 25, 35)
    for width, head in zip(
        widths, ("Service", "API calls", "Tokens", "Images", "Amount"), strict=True
    ):
        pdf.cell(width, 7, head, border="B", align="L" if head == "Service" else "R")
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    if not statement.usage_by_service:
        pdf.cell(0, 7, "No usage this month.", new_x="LMARGIN", new_y="NEXT")
    for s in statement.usage_by_service:
        values = (
            s.service,
            f"{s.api_calls:,}",
            f"{s.tokens:,}",
            f"{s.images:,}",
            format_money(s.amount),
        )
        for width, value in zip(widths, values, strict=True):
            pdf.cell(width, 7, value, align="L" if value == s.service else "R")
        pdf.ln()
    pdf.ln(8)
    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(
        0,
        4,
        "Opening + purchases + credits + refunds - usage = closing. Amounts are exact to "
        "the micro-dollar (6 places), as in your ledger and the billing team's reconciliation.",
    )
    return bytes(pdf.output())
