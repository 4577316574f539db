"""Monthly statements: the months a license has (each with its opening and closing), a
month's statement and its PDF, and a year's statements as one PDF."""

from datetime import date

from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.generic import TemplateView

from accounts.mixins import LicenseMixin
from billing.reconciliation.report import month_parse
from billing.statements.selectors import (
    bridge_lines,
    statement_get,
    statement_months,
    statement_years,
)
from dashboard.statement_pdf import statement_pdf, statements_pdf
from portal.db_router import replica_reads
from portal.moments import format_local_time
from portal.ratelimit import LicenseRateLimitMixin


@method_decorator(replica_reads, name="dispatch")
class StatementListView(LicenseMixin, TemplateView):
    template_name = "dashboard/statements.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(nav_current="statements", **kwargs)
        context["years"] = statement_years(self.license)
        context["bridge_terms"] = bridge_lines()
        return context


def _statement_month(license, text: str) -> date:
    try:
        month = month_parse(text)
    except ValueError as exc:
        raise Http404(str(exc)) from exc
    if month not in statement_months(license):
        raise Http404("No statement for that month.")
    return month


@method_decorator(replica_reads, name="dispatch")
class StatementDetailView(LicenseMixin, TemplateView):
    template_name = "dashboard/statement.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(nav_current="statements", **kwargs)
        month = _statement_month(self.license, kwargs["month"])
        context["statement"] = statement_get(license=self.license, month=month)
        return context


class _StatementDownload(LicenseMixin, LicenseRateLimitMixin, View):
    """A statement PDF. Building it is real work, so downloads are limited per login and
    license (STATEMENT_PDF_RATE_LIMIT per STATEMENT_PDF_RATE_WINDOW_SECONDS), a month's and
    a year's together, HEAD included, and a HEAD gets the headers without the PDF being
    built (issue 18). Over the limit: a 429 page saying when to retry (issue 28)."""

    rate_scope = "statement_pdf"
    rate_limited_handlers = ("get", "head")
    rate_limited_noun = "Statement downloads"
    rate_limited_action = "download it"
    rate_limited_page = True  # a 429 page, never a 200 page where a file was expected

    @property
    def rate_limit(self) -> int:
        return settings.STATEMENT_PDF_RATE_LIMIT

    @property
    def rate_window(self) -> int:
        return settings.STATEMENT_PDF_RATE_WINDOW_SECONDS

    def _response(self, name: str, content: bytes = b"") -> HttpResponse:
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = (
            f'attachment; filename="statement_{self.license.key}_{name}.pdf"'
        )
        response["Cache-Control"] = "no-store"
        return response


@method_decorator(replica_reads, name="dispatch")
class StatementPdfView(_StatementDownload):
    """A month's statement as a PDF."""

    def head(self, request, *args, **kwargs):
        return self._response(f"{_statement_month(self.license, kwargs['month']):%Y-%m}")

    def get(self, request, *args, **kwargs):
        month = _statement_month(self.license, kwargs["month"])
        statement = statement_get(license=self.license, month=month)
        generated = format_local_time(timezone.now(), self.license.timezone)
        return self._response(f"{month:%Y-%m}", statement_pdf(statement, generated=generated))


def _statement_year(license, year: int) -> list[date]:
    """The year's statement months, oldest first; 404 for a year without any."""
    months = sorted(m for m in statement_months(license) if m.year == year)
    if not months:
        raise Http404("No statements that year.")
    return months


@method_decorator(replica_reads, name="dispatch")
class StatementYearPdfView(_StatementDownload):
    """A year's statements as one PDF: each month as its own statement, oldest first."""

    def head(self, request, *args, **kwargs):
        _statement_year(self.license, kwargs["year"])
        return self._response(str(kwargs["year"]))

    def get(self, request, *args, **kwargs):
        year = kwargs["year"]
        statements = [
            statement_get(license=self.license, month=month)
            for month in _statement_year(self.license, year)
        ]
        generated = format_local_time(timezone.now(), self.license.timezone)
        content = statements_pdf(
            statements, title=f"{self.license.name} statements {year}", generated=generated
        )
        return self._response(str(year), content)
