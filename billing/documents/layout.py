"""The one page layout of the portal's money documents (fpdf2, pure Python): the seller's
heading, label/value rows, a ruled total and a closing note. Invoices and credit notes
(billing.documents.pdf) and card receipts (payments.receipts) are drawn with it."""

from fpdf import FPDF

LABEL_WIDTH = 50


def latin1(text: str) -> str:
    """The PDF core fonts speak Latin-1: anything else becomes '?' rather than failing."""
    return text.replace("•", "*").replace("−", "-").encode("latin-1", "replace").decode("latin-1")


class DocumentPage:
    """One A4 page: `heading`, then `rows`, `lines`, `total`, `note`, then `output`."""

    def __init__(self, title: str, seller: tuple[str, ...]):
        self.pdf = FPDF(format="A4")
        self.pdf.set_title(title)
        self.pdf.set_creator("Token & Credit Portal")
        self.pdf.add_page()
        self.pdf.set_font("Helvetica", "B", 20)
        self.pdf.cell(0, 12, latin1(title), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font("Helvetica", "", 10)
        for line in seller:
            if line:
                self.pdf.cell(0, 5, latin1(line), new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(8)

    def rows(self, rows: list[tuple[str, str]]) -> None:
        for label, value in rows:
            self.pdf.set_font("Helvetica", "B", 10)
            self.pdf.cell(LABEL_WIDTH, 7, latin1(label))
            self.pdf.set_font("Helvetica", "", 10)
            self.pdf.multi_cell(0, 7, latin1(value), new_x="LMARGIN", new_y="NEXT")

    def rule(self) -> None:
        pdf = self.pdf
        pdf.ln(4)
        pdf.set_draw_color(180, 180, 180)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(3)

    def amounts(self, amounts: list[tuple[str, str]]) -> None:
        """Lines of the document with their amounts on the right."""
        self.pdf.set_font("Helvetica", "", 10)
        for label, amount in amounts:
            self.pdf.cell(140, 7, latin1(label))
            self.pdf.cell(0, 7, latin1(amount), align="R", new_x="LMARGIN", new_y="NEXT")

    def total(self, label: str, amount: str) -> None:
        self.rule()
        self.pdf.set_font("Helvetica", "B", 14)
        self.pdf.cell(LABEL_WIDTH, 10, latin1(label))
        self.pdf.cell(0, 10, latin1(amount), align="R", new_x="LMARGIN", new_y="NEXT")

    def note(self, text: str) -> None:
        self.pdf.set_font("Helvetica", "", 9)
        self.pdf.ln(6)
        self.pdf.multi_cell(0, 5, latin1(text))

    def output(self) -> bytes:
        return bytes(self.pdf.output())
