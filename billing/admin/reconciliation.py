"""The monthly reconciliation page (and its CSV) for the billing team."""

from datetime import date

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.models import License
from billing.reconciliation import (
    ReconciliationReport,
    month_parse,
    reconciliation_csv_write,
    reconciliation_filename,
    reconciliation_month,
)


def reconciliation_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Per license for a month: opening, purchases, usage, refunds, closing, and any
    stored figure that differs from the ledger. ?format=csv downloads it."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    today = timezone.localdate()
    default_month = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
    month_text = request.GET.get("month") or default_month.strftime("%Y-%m")
    key = (request.GET.get("license") or "").strip()
    only_differences = request.GET.get("only_differences") == "1"
    errors: list[str] = []
    report = None
    try:
        month = month_parse(month_text)
    except ValueError as exc:
        errors.append(str(exc))
        month = None
    license = None
    if key:
        license = License.objects.filter(key=key).first()
        if license is None:
            errors.append(f"No license has the key '{key}'.")
    if month is not None and not errors:
        report = reconciliation_month(month=month, license=license)
        if request.GET.get("format") == "csv":
            return _reconciliation_csv(report)
    rows = report.rows if report is not None else []
    if only_differences:
        rows = [row for row in rows if not row.ok]
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Ledger reconciliation",
        "report": report,
        "rows": rows,
        "month_text": month_text,
        "license_key": key,
        "only_differences": only_differences,
        "errors": errors,
    }
    return TemplateResponse(request, "admin/billing/reconciliation.html", context)


def _reconciliation_csv(report: ReconciliationReport) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{reconciliation_filename(report)}"'
    reconciliation_csv_write(report, response)
    return response
