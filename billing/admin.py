"""The billing team's admin: the ledger (read-only), refunds, goodwill credits, purchases,
prices (add-only), balances and rollups (read-only), and the monthly reconciliation.

Money only moves through billing.services; nothing here saves a ledger row itself. Views
that move money check the billing permissions themselves (Support gets a 403), and the
lists avoid the queries that grow with the ledger (full counts, DISTINCT dates).
"""

import calendar
import logging
from datetime import date

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Max, Min, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import Truncator

from accounts.models import License
from billing.forms import (
    GoodwillForm,
    PriceForm,
    PurchaseForm,
    RefundForm,
    apply_application_error,
    new_idempotency_key,
)
from billing.models import BalanceAlert, DailyRollup, LedgerEntry, LicenseBalance, Price
from billing.money import PER_MILLION, PER_TEN_THOUSAND, format_money
from billing.prices import price_add
from billing.reconciliation import (
    month_parse,
    reconciliation_csv_write,
    reconciliation_filename,
    reconciliation_month,
)
from billing.services import purchase_record, refund_issue, refundable_amount
from portal.admin import ReadOnlyAdminMixin
from portal.exceptions import ApplicationError

logger = logging.getLogger(__name__)


def can_issue_refunds(user) -> bool:
    return user.is_active and user.is_staff and user.has_perm("billing.issue_refund")


def can_record_purchases(user) -> bool:
    return user.is_active and user.is_staff and user.has_perm("billing.record_purchase")


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows (a LIMITed subquery), so a list page never counts the ledger.

    Beyond CAP the list says "10,000+" and offers the newest CAP rows; filters (license,
    kind, dates) narrow it. Deep OFFSETs are bounded by the same cap.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        found = self.object_list[: self.CAP + 1].count()
        self.capped = found > self.CAP
        return min(found, self.CAP)

    capped = False


class CheapDateHierarchyChangeList(ChangeList):
    """The date drill-down from MIN/MAX (two index lookups) and the calendar.

    Django's own asks the database for the DISTINCT years, months or days of the
    filtered rows: a full scan of the ledger on every list page. This one may offer a
    period with no entries; following it shows an empty list, which is cheap.
    """

    @cached_property
    def cheap_date_hierarchy(self) -> dict:
        field = self.date_hierarchy
        generic = f"{field}__"
        year, month, day = (self.params.get(f"{field}__{p}") for p in ("year", "month", "day"))

        def link(filters):
            return self.get_query_string(filters, [generic])

        def as_int(value):
            try:
                return int(value)
            except (TypeError, ValueError):
                return None

        year, month, day = as_int(year), as_int(month), as_int(day)
        if year and month and day:
            return {
                "show": True,
                "back": {"link": link({f"{field}__year": year, f"{field}__month": month}),
                         "title": date(year, month, 1).strftime("%B %Y")},
                "choices": [{"title": date(year, month, day).strftime("%B %-d")}],
            }  # fmt: skip
        if year and month:
            days = calendar.monthrange(year, month)[1]
            return {
                "show": True,
                "back": {"link": link({f"{field}__year": year}), "title": str(year)},
                "choices": [
                    {
                        "link": link(
                            {f"{field}__year": year, f"{field}__month": month, f"{field}__day": d}
                        ),
                        "title": date(year, month, d).strftime("%b %-d"),
                    }
                    for d in range(1, days + 1)
                ],
            }
        if year:
            return {
                "show": True,
                "back": {"link": link({}), "title": "All dates"},
                "choices": [
                    {
                        "link": link({f"{field}__year": year, f"{field}__month": m}),
                        "title": date(year, m, 1).strftime("%B %Y"),
                    }
                    for m in range(1, 13)
                ],
            }
        if self.query:
            # A text search scans; the date range of its result would scan a second time.
            return {"show": False}
        span = self.queryset.order_by().aggregate(first=Min(field), last=Max(field))
        if span["first"] is None:
            return {"show": False}
        first, last = timezone.localtime(span["first"]), timezone.localtime(span["last"])
        return {
            "show": True,
            "back": None,
            "choices": [
                {"link": link({f"{field}__year": y}), "title": str(y)}
                for y in range(first.year, last.year + 1)
            ],
        }


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "occurred_at",
        "license",
        "kind",
        "service",
        "amount_display",
        "tokens",
        "images",
        "short_description",
        "external_id",
        "created_by",
    ]
    list_select_related = ["license", "created_by"]
    list_filter = ["kind", "service", ("license", admin.RelatedFieldListFilter)]
    # Searched by get_search_results below; listed so the admin shows the search box.
    search_fields = ["license__key", "license__name", "external_id", "description"]
    search_help_text = (
        "A license key or part of a license name shows that license's entries; anything "
        "else is an exact external id or part of a description (fastest with a license "
        "chosen on the right)."
    )
    date_hierarchy = "occurred_at"
    ordering = ["-occurred_at", "-id"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
    fields = [
        "id",
        "license",
        "kind",
        "service",
        "amount_display",
        "tokens",
        "images",
        "api_calls",
        "description",
        "occurred_at",
        "recorded_at",
        "external_id",
        "refund_of",
        "reason",
        "created_by",
        "refunds_issued",
        "still_refundable",
    ]
    readonly_fields = fields

    def get_changelist(self, request, **kwargs):
        return CheapDateHierarchyChangeList

    def get_search_results(self, request, queryset, search_term):
        """License first, then external id or description.

        Django's default ORs every field into one condition, which forces a scan of the
        whole ledger even for an exact license key. Licenses are few: a term that names
        one (or several) becomes `license_id IN (…)`, served by ledger_license_recent.
        Otherwise an exact external id (one probe of the unique (license, external_id)
        index when a license is chosen), else a description match, which scans — within
        the chosen license's rows when there is one.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        licenses = list(
            License.objects.filter(Q(key=term) | Q(name__icontains=term)).values_list(
                "pk", flat=True
            )[:100]
        )
        if licenses:
            return queryset.filter(license_id__in=licenses), False
        exact = queryset.filter(external_id=term)
        if exact.exists():  # with a license chosen: one probe of the unique index
            return exact, False
        return queryset.filter(description__icontains=term), False

    def get_list_display(self, request):
        display = list(super().get_list_display(request))
        if can_issue_refunds(request.user):
            display.append("refund_link")
        return display

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj):
        return format_money(obj.amount)

    @admin.display(description="description")
    def short_description(self, obj):
        return Truncator(obj.description).chars(50)

    @admin.display(description="")
    def refund_link(self, obj):
        if obj.kind != LedgerEntry.Kind.USAGE or obj.amount == 0:
            return ""
        url = reverse("admin:billing_ledgerentry_refund", args=[obj.pk])
        return format_html('<a href="{}">Refund…</a>', url)

    @admin.display(description="refunds of this charge")
    def refunds_issued(self, obj):
        if obj.kind != LedgerEntry.Kind.USAGE:
            return "—"
        refunds = list(
            LedgerEntry.objects.for_license(obj.license_id)
            .filter(refund_of=obj)
            .select_related("created_by")
            .order_by("occurred_at", "id")
        )
        if not refunds:
            return "none"
        return format_html(
            "<br>".join(["{}"] * len(refunds)),
            *[
                f"#{r.pk} {format_money(r.amount)} on {timezone.localtime(r.occurred_at):%Y-%m-%d %H:%M}"
                f" by {r.created_by or 'system'}: {r.reason}"
                for r in refunds
            ],
        )

    @admin.display(description="still refundable")
    def still_refundable(self, obj):
        if obj.kind != LedgerEntry.Kind.USAGE:
            return "—"
        return format_money(refundable_amount(obj))

    # --- extra pages --------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        extra = [
            path(
                "<int:entry_id>/refund/",
                wrap(self.refund_view),
                name="billing_ledgerentry_refund",
            ),
            path(
                "license/<int:license_id>/goodwill/",
                wrap(self.goodwill_view),
                name="billing_ledgerentry_goodwill",
            ),
            path(
                "license/<int:license_id>/purchase/",
                wrap(self.purchase_view),
                name="billing_ledgerentry_purchase",
            ),
            path(
                "reconciliation/",
                wrap(self.reconciliation_view),
                name="billing_ledgerentry_reconciliation",
            ),
        ]
        return extra + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_reconcile": True}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        entry = self.get_object(request, object_id)
        if (
            entry is not None
            and entry.kind == LedgerEntry.Kind.USAGE
            and can_issue_refunds(request.user)
        ):
            extra_context["refund_url"] = reverse(
                "admin:billing_ledgerentry_refund", args=[entry.pk]
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def _form_page(self, request, *, title, form, license, entry=None, notes=(), submit):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "form": form,
            "license": license,
            "entry": entry,
            "notes": notes,
            "submit_label": submit,
            "license_url": reverse("admin:accounts_license_change", args=[license.pk]),
        }
        return TemplateResponse(request, "admin/billing/money_form.html", context)

    def refund_view(self, request, entry_id: int):
        """Refund this charge: part or all of one usage entry, with a reason."""
        if not can_issue_refunds(request.user):
            raise PermissionDenied
        entry = get_object_or_404(LedgerEntry.objects.select_related("license"), pk=entry_id)
        entry_url = reverse("admin:billing_ledgerentry_change", args=[entry.pk])
        if entry.kind != LedgerEntry.Kind.USAGE:
            messages.error(request, "Only a usage charge can be refunded.")
            return redirect(entry_url)
        remaining = refundable_amount(entry)
        if request.method == "POST":
            form = RefundForm(request.POST)
            done = self._money_submit(
                request,
                form,
                lambda data: refund_issue(
                    acting_user=request.user,
                    license=entry.license,
                    amount=data["amount"],
                    reason=data["reason"],
                    idempotency_key=data["idempotency_key"],
                    refund_of=entry,
                ),
            )
            if done:
                return done
        elif remaining <= 0:
            messages.warning(request, "Nothing is left to refund on this charge.")
            return redirect(entry_url)
        else:
            form = RefundForm(
                initial={"amount": remaining, "idempotency_key": new_idempotency_key()}
            )
        return self._form_page(
            request,
            title=f"Refund charge #{entry.pk}",
            form=form,
            license=entry.license,
            entry=entry,
            notes=[
                f"Charge: {format_money(-entry.amount)} for {entry.service} on "
                f"{timezone.localtime(entry.occurred_at):%Y-%m-%d %H:%M} ({entry.description})",
                f"Still refundable: {format_money(remaining)}",
            ],
            submit="Issue refund",
        )

    def goodwill_view(self, request, license_id: int):
        """A goodwill credit on a license: not tied to a charge, a reason required."""
        if not can_issue_refunds(request.user):
            raise PermissionDenied
        license = get_object_or_404(License, pk=license_id)
        if request.method == "POST":
            form = GoodwillForm(request.POST)
            done = self._money_submit(
                request,
                form,
                lambda data: refund_issue(
                    acting_user=request.user,
                    license=license,
                    amount=data["amount"],
                    reason=data["reason"],
                    idempotency_key=data["idempotency_key"],
                ),
            )
            if done:
                return done
        else:
            form = GoodwillForm(initial={"idempotency_key": new_idempotency_key()})
        return self._form_page(
            request,
            title=f"Goodwill credit for {license.name}",
            form=form,
            license=license,
            submit="Credit the license",
        )

    def purchase_view(self, request, license_id: int):
        """Record a purchase of credits (a payment received outside the portal)."""
        if not can_record_purchases(request.user):
            raise PermissionDenied
        license = get_object_or_404(License, pk=license_id)
        if request.method == "POST":
            form = PurchaseForm(request.POST)
            done = self._money_submit(
                request,
                form,
                lambda data: purchase_record(
                    acting_user=request.user,
                    license=license,
                    amount=data["amount"],
                    external_id=data["external_id"],
                    description=data["description"],
                ),
            )
            if done:
                return done
        else:
            form = PurchaseForm()
        return self._form_page(
            request,
            title=f"Record a purchase for {license.name}",
            form=form,
            license=license,
            submit="Record purchase",
        )

    def _money_submit(self, request, form, record):
        """Validate a money form and record it; the done redirect, or None to show the form
        again with the errors (the service's refusal put on its field)."""
        if not form.is_valid():
            return None
        try:
            result = record(form.cleaned_data)
        except ApplicationError as exc:
            apply_application_error(form, exc)
            return None
        return self._money_done(request, result.entry, result.created)

    def _money_done(self, request, entry: LedgerEntry, created: bool):
        what = entry.get_kind_display().lower()
        if created:
            messages.success(
                request, f"Recorded {what} #{entry.pk} of {format_money(entry.amount)}."
            )
        else:
            messages.info(
                request,
                f"This {what} was already recorded as #{entry.pk}; nothing was added.",
            )
        return redirect(reverse("admin:billing_ledgerentry_change", args=[entry.pk]))

    def reconciliation_view(self, request):
        """Per license for a month: opening, purchases, usage, refunds, closing, and any
        stored figure that differs from the ledger. ?format=csv downloads it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.localdate()
        default_month = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
        month_text = request.GET.get("month") or default_month.strftime("%Y-%m")
        key = (request.GET.get("license") or "").strip()
        only_differences = request.GET.get("only_differences") == "1"
        errors = []
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
        if not errors:
            report = reconciliation_month(month=month, license=license)
            if request.GET.get("format") == "csv":
                return self._reconciliation_csv(report)
        rows = report.rows if report is not None else []
        if only_differences:
            rows = [row for row in rows if not row.ok]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Ledger reconciliation",
            "report": report,
            "rows": rows,
            "month_text": month_text,
            "license_key": key,
            "only_differences": only_differences,
            "errors": errors,
        }
        return TemplateResponse(request, "admin/billing/reconciliation.html", context)

    def _reconciliation_csv(self, report):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{reconciliation_filename(report)}"'
        )
        reconciliation_csv_write(report, response)
        return response


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    """Add-only: a price change is a new row from a moment on. The database refuses any
    edit, and the deletion of a price in effect, so the admin offers neither."""

    form = PriceForm
    list_display = [
        "service",
        "unit_price",
        "bulk_price",
        "effective_from",
        "in_effect",
        "created_by",
        "created_at",
    ]
    list_filter = ["service"]
    list_select_related = ["created_by"]
    ordering = ["service", "-effective_from"]
    readonly_fields = ["created_by", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["service", "unit_price", "effective_from"]
        return ["service", "unit_price", "effective_from", "created_by", "created_at"]

    @admin.display(description="bulk price")
    def bulk_price(self, obj):
        if obj.service == "ai_images":
            return f"{format_money(obj.unit_price * PER_TEN_THOUSAND, 2)} per 10,000 images"
        return f"{format_money(obj.unit_price * PER_MILLION, 3)} per 1M tokens"

    @admin.display(description="in effect since", boolean=True)
    def in_effect(self, obj):
        return obj.effective_from <= timezone.now()

    def save_model(self, request, obj, form, change):
        # The service validates, writes the row and the audit event in one transaction.
        # The form already checked the same rules, so a refusal here is a race (another
        # price for the same moment): the unique constraint keeps the data right.
        price = price_add(
            acting_user=request.user,
            service=form.cleaned_data["service"],
            unit_price=form.cleaned_data["unit_price"],
            effective_from=form.cleaned_data.get("effective_from"),
        )
        obj.pk = price.pk
        obj.effective_from = price.effective_from
        obj.created_by = price.created_by
        obj.created_at = price.created_at


@admin.register(LicenseBalance)
class LicenseBalanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "license",
        "balance_display",
        "total_purchased",
        "total_spent",
        "total_refunded",
        "api_calls",
        "input_tokens",
        "cached_tokens",
        "completion_tokens",
        "images",
        "entries",
        "updated_at",
    ]
    list_select_related = ["license"]
    search_fields = ["=license__key", "license__name"]
    ordering = ["license__name"]
    show_full_result_count = False

    @admin.display(description="balance", ordering="balance")
    def balance_display(self, obj):
        return format_money(obj.balance)


@admin.register(DailyRollup)
class DailyRollupAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "day",
        "license",
        "kind",
        "service",
        "amount",
        "tokens",
        "images",
        "api_calls",
        "entries",
    ]
    list_select_related = ["license"]
    list_filter = ["kind", "service", ("license", admin.RelatedFieldListFilter)]
    search_fields = ["=license__key", "license__name"]
    # Newest first by id: served by the primary key, not a sort of the whole table.
    ordering = ["-id"]
    show_full_result_count = False
    paginator = CappedCountPaginator


@admin.register(BalanceAlert)
class BalanceAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Low-balance emails: which line was crossed, when, to whom, and whether it went out."""

    list_display = ["crossed_at", "license", "kind", "balance", "threshold", "sent_at", "attempts"]
    list_select_related = ["license"]
    list_filter = ["kind", ("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["=license__key", "license__name"]
    ordering = ["-id"]
    readonly_fields = [
        "license", "kind", "balance", "threshold", "crossed_at", "recipients", "sent_at",
        "attempts", "last_error",
    ]  # fmt: skip
