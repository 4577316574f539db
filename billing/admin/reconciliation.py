"""The monthly reconciliation page (and its CSV) for the billing team, with the month
close: Billing closes a month once it reconciles; a superuser reopens it with a reason."""

from datetime import date

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from accounts.mixins import request_login
from accounts.models import License
from billing.closing.services import (
    closed_figures_changed,
    closed_month_get,
    month_close,
    month_close_preview,
    month_close_refusal,
    month_is_closed,
    month_refuse_future,
    month_reopen,
    report_totals,
)
from billing.reconciliation.export import reconciliation_csv_write, reconciliation_filename
from billing.reconciliation.report import ReconciliationReport, month_parse, reconciliation_month
from portal.exceptions import ApplicationError
from portal.months import previous_month


def reconciliation_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Per license for a month: opening, purchases, usage, refunds, closing, and any
    stored figure that differs from the ledger. ?format=csv downloads it."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    today = timezone.localdate()
    default_month = previous_month(today)
    month_text = request.GET.get("month") or default_month.strftime("%Y-%m")
    key = (request.GET.get("license") or "").strip()
    only_differences = request.GET.get("only_differences") == "1"
    errors: list[str] = []
    report = None
    try:
        month = month_parse(month_text)
        month_refuse_future(month)
    except ValueError as exc:
        errors.append(str(exc))
        month = None
    except ApplicationError as exc:
        errors.append(exc.message)
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
    closed = closed_month_get(month) if month is not None else None
    whole = report is not None and license is None  # the close covers every license
    can_close = False
    if report is not None and month is not None and whole:
        can_close = month_close_refusal(month, report=report) is None and request.user.has_perm(
            "billing.close_month"
        )
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
        "totals": report_totals(report) if report is not None else None,
        "closed": closed,
        "closed_changes": (
            closed_figures_changed(closed, report) if closed and report and whole else []
        ),
        "closed_through": month is not None and month_is_closed(month),
        "can_close": can_close,
        "can_reopen": closed is not None and request.user.is_superuser,
    }
    return TemplateResponse(request, "admin/billing/reconciliation.html", context)


def _reconciliation_csv(report: ReconciliationReport) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{reconciliation_filename(report)}"'
    reconciliation_csv_write(report, response)
    return response


CLOSE_IS_FOR_BILLING = "Closing a month is for the Billing team: ask a Billing member to close it."
REOPEN_IS_FOR_SUPERUSERS = (
    "Reopening a closed month is for superusers only: ask an administrator to reopen it."
)


def month_close_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """month=YYYY-MM: first a page showing what closing it freezes (its figures, the
    earlier open months it closes too) that asks billing to confirm (billing.close_month);
    the confirmation (POST confirm=1, with the digest of the figures shown) closes it. A
    POST with reopen=1 and a reason reopens it (superusers). Back to the month's
    reconciliation with what happened."""
    reopen = request.POST.get("reopen") == "1"
    if reopen and (request.method != "POST" or not request.user.is_superuser):
        raise PermissionDenied(REOPEN_IS_FOR_SUPERUSERS)
    if not reopen and not request.user.has_perm("billing.close_month"):
        raise PermissionDenied(CLOSE_IS_FOR_BILLING)
    user = request_login(request)
    month_text = request.POST.get("month") or request.GET.get("month", "")
    back = (
        reverse("admin:billing_ledgerentry_reconciliation") + "?" + urlencode({"month": month_text})
    )
    shown = request.POST.get("figures", "")
    confirmed = request.method == "POST" and request.POST.get("confirm") == "1" and shown
    try:
        month = month_parse(month_text)
        if reopen:
            month_reopen(acting_user=user, month=month, reason=request.POST.get("reason", ""))
            model_admin.message_user(request, f"{month:%B %Y} is open again.", messages.WARNING)
        elif not confirmed:
            return _month_close_confirm(model_admin, request, month)
        else:
            month_close(acting_user=user, month=month, figures_shown=shown)
            model_admin.message_user(
                request,
                f"{month:%B %Y} is closed: entries dated in it from now on are posted in the "
                "open month, keeping their own time.",
                messages.SUCCESS,
            )
    except ValueError as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
    except ApplicationError as exc:
        model_admin.message_user(request, exc.message, messages.ERROR)
    return HttpResponseRedirect(back)


def _month_close_confirm(
    model_admin: admin.ModelAdmin, request: HttpRequest, month: date
) -> HttpResponse:
    """The question before a close: what it freezes. A month that may not be closed goes
    back to its reconciliation with the reason (ApplicationError)."""
    refusal = month_close_refusal(month)  # before the report: a future month has none
    report = reconciliation_month(month=month) if refusal is None else None
    if report is not None:
        refusal = month_close_refusal(month, report=report)
    if refusal is not None or report is None:
        raise ApplicationError(refusal or f"{month:%B %Y} cannot be closed.")
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Close {month:%B %Y}?",
        "preview": month_close_preview(month, report=report),
        "reconciliation_url": reverse("admin:billing_ledgerentry_reconciliation")
        + "?"
        + urlencode({"month": f"{month:%Y-%m}"}),
    }
    return TemplateResponse(request, "admin/billing/month_close_confirm.html", context)
