"""A monthly statement as a PDF (fpdf2: pure Python, no system libraries), and a year's
statements as one PDF: each month laid out as its own statement, on its own pages."""

from fpdf import FPDF

from billing.money import format_money
from billing.statements.selectors import Statement
from portal.moments import format_local_time


def _cell_text(text: str) -> str:
    # The core fonts are Latin-1: the masked key's bullets become "*", anything else "?".
    text = text.replace("\u2022", "*").replace("\u2013", "-").replace("\u2212", "-")
    return text.encode("latin-1", "replace").decode("latin-1")


def statement_pdf(statement: Statement, *, generated: str) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(f"{statement.license.name} statement {statement.month:%Y-%m}")
    pdf.set_author("Token & Credit Portal")
    _statement_pages(pdf, statement, generated=generated)
    return bytes(pdf.output())


def statements_pdf(statements: list[Statement], *, title: str, generated: str) -> bytes:
    """Several months' statements in one PDF, in the order given, each exactly as its own
    PDF lays it out."""
    pdf = FPDF(format="A4")
    pdf.set_title(_cell_text(title))
    pdf.set_author("Token & Credit Portal")
    for statement in statements:
        _statement_pages(pdf, statement, generated=generated)
    return bytes(pdf.output())


def _statement_pages(pdf: FPDF, statement: Statement, *, generated: str) -> None:
    """One month's statement, from a new page."""
    lic = statement.license
    f = statement.figures
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _cell_text(f"Statement - {statement.title}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    heading = [
        f"{lic.name} (license {lic.masked_key})",
        f"Days and times in {lic.timezone}.",
    ]
    if statement.to_date:
        heading.append(f"This month is still running: figures to date ({generated}).")
    for text in heading:
        pdf.cell(0, 6, _cell_text(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    def row(label: str, value: str, bold: bool = False) -> None:
        pdf.set_font("Helvetica", "B" if bold else "", 11)
        pdf.cell(110, 8, _cell_text(label), border="B")
        pdf.cell(60, 8, value, border="B", align="R", new_x="LMARGIN", new_y="NEXT")

    row("Opening balance", format_money(f.opening), bold=True)
    for line in statement.lines:
        row(f"{line.sign} {line.title}", format_money(line.amount))
    row(
        "Closing balance" + (" (to date)" if statement.to_date else ""),
        format_money(f.closing),
        True,
    )
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Usage by service", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(
        0,
        4,
        _cell_text(
            f"{statement.api_calls:,} API calls, posted as {statement.usage_entries:,} usage "
            f"transactions; {f.entries:,} transactions in all this month. A transaction is a "
            "line of your ledger: an API call posts one per service it used. Each call counts "
            "once, under one service: a call that made images under ai_images, any other "
            "under ai_data."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("Helvetica", "B", 10)
    widths = (42, 24, 28, 34, 22, 34)
    heads = ("Service", "API calls", "Transactions", "Tokens", "Images", "Amount")
    for width, head in zip(widths, heads, strict=True):
        pdf.cell(width, 7, head, border="B", align="L" if head == "Service" else "R")
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    if not statement.usage_by_service:
        pdf.cell(0, 7, "No usage this month.", new_x="LMARGIN", new_y="NEXT")
    for s in statement.usage_by_service:
        values = (
            s.service,
            f"{s.api_calls:,}",
            f"{s.entries:,}",
            f"{s.tokens:,}",
            f"{s.images:,}",
            format_money(s.amount),
        )
        for width, value in zip(widths, values, strict=True):
            pdf.cell(width, 7, value, align="L" if value == s.service else "R")
        pdf.ln()
    _credit(pdf, statement, tz=lic.timezone)
    pdf.ln(8)
    pdf.set_font("Helvetica", "", 8)
    words = " ".join(f"{line.sign} {line.title.lower()}" for line in statement.lines)
    pdf.multi_cell(
        0,
        4,
        _cell_text(
            f"Opening {words} = closing. Refunds of card purchases are money returned to your "
            "card; refunds of usage are charges given back to your balance. Amounts are exact "
            "to the micro-dollar (6 places), as in your ledger and the billing team's "
            "reconciliation."
        ),
    )


def _credit(pdf: FPDF, statement: Statement, *, tz: str) -> None:
    """The month's credit grants: by kind, granted, used, refunded, expired and left; the
    grants received and expired, their times in the license's timezone."""
    g = statement.grants
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Credit (paid / promotional)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    rows = (
        ("Granted", g.paid_sold, g.promotional_granted),
        ("Used", g.paid_consumed, g.promotional_consumed),
        ("Refunded to the card", g.paid_refunded, None),
        ("Expired", g.paid_expired, g.promotional_expired),
        ("Left at the end of the month", g.paid_outstanding, g.promotional_outstanding),
    )
    for label, paid, promotional in rows:
        pdf.cell(80, 6, label)
        pdf.cell(45, 6, format_money(paid), align="R")
        pdf.cell(45, 6, "-" if promotional is None else format_money(promotional), align="R")
        pdf.ln()
    for grant in statement.granted:
        until = format_local_time(grant.expires_at, tz) if grant.expires_at else "never"
        text = (
            f"Received: {grant.get_kind_display()} of {format_money(grant.amount)} on "
            f"{format_local_time(grant.granted_at, tz)}, expires {until}"
        )
        pdf.multi_cell(0, 5, _cell_text(text), new_x="LMARGIN", new_y="NEXT")
    for grant in statement.expired:
        left = format_money(-grant.expiry_entry.amount) if grant.expiry_entry else "nothing"
        when = format_local_time(grant.expires_at, tz) if grant.expires_at else ""
        text = (
            f"Expired: {grant.get_kind_display()} of {format_money(grant.amount)}, "
            f"{left} unused on {when}"
        )
        pdf.multi_cell(0, 5, _cell_text(text), new_x="LMARGIN", new_y="NEXT")
