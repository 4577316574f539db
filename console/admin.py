"""The license page a support person can live in, registered here rather than in accounts:
it composes balance (billing), sync state (usage), alerts, members, domains, the audit
trail and the ledger with its running balance, and accounts sits below billing and usage,
so it must not import them. ConsoleLicenseAdmin extends accounts' LicenseAdmin (forms,
audited saves, search) with those panels, the license's ledger page and "Sync now"."""

from datetime import datetime
from decimal import Decimal

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from accounts.admin import LicenseAdmin
from accounts.models import License
from billing.admin.money import can_issue_refunds
from billing.ledger.pages import PAGE_SIZE, ledger_entry_find, ledger_page, ledger_page_at
from billing.ledger.selectors import balance_get
from billing.money import format_money
from console.selectors import license_console_get
from usage.admin import sync_now_run


class BelowThresholdFilter(admin.SimpleListFilter):
    title = "balance"
    parameter_name = "below_threshold"

    def lookups(self, request, model_admin):
        return [("yes", "Below its threshold")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(balance__balance__lt=F("low_balance_threshold"))
        return queryset


def can_sync_now(request: HttpRequest) -> bool:
    return request.user.has_perm("usage.sync_now")


admin.site.unregister(License)


@admin.register(License)
class ConsoleLicenseAdmin(LicenseAdmin):
    list_display = [
        "name", "key", "license_type", "status", "balance_shown", "contact_email", "member_since",
    ]  # fmt: skip
    list_select_related = ["balance"]
    list_filter = [BelowThresholdFilter, "license_type", "status"]
    # License.get_absolute_url() is the customer's dashboard, which is a 404 for staff (they
    # are members of no license): this page is the staff's view of the license, so the
    # admin's "View on site" button is not shown.
    view_on_site = False

    @admin.display(description="balance", ordering="balance__balance")
    def balance_shown(self, obj: License) -> str:
        try:
            return format_money(obj.balance.balance)
        except License.balance.RelatedObjectDoesNotExist:
            return format_money(Decimal(0))

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:object_id>/ledger/",
                wrap(self.ledger_view),
                name="accounts_license_ledger",
            ),
            path(
                "<int:object_id>/sync-now/",
                wrap(require_POST(self.sync_now_view)),
                name="accounts_license_sync_now",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        license = self.get_object(request, object_id)
        if license is not None:
            extra_context["console"] = license_console_get(license)
            extra_context["can_sync_now"] = can_sync_now(request)
            extra_context["can_refund"] = can_issue_refunds(request.user)
        return super().change_view(request, object_id, form_url, extra_context)

    def _license_or_404(self, request: HttpRequest, object_id: int) -> License:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return get_object_or_404(License, pk=object_id)

    def sync_now_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        license = self._license_or_404(request, object_id)
        if not can_sync_now(request):
            raise PermissionDenied
        text, level = sync_now_run(request, license)
        self.message_user(request, text, level)
        return HttpResponseRedirect(reverse("admin:accounts_license_change", args=[license.pk]))

    def ledger_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The license's ledger, newest first, in its timezone, with the running balance;
        ?q= finds an entry (id, external id, record id, request id) and starts there."""
        license = self._license_or_404(request, object_id)
        term = (request.GET.get("q") or "").strip()
        not_found = False
        if term:
            entry = ledger_entry_find(license=license, term=term)
            if entry is None:
                not_found = True
                page = ledger_page(license=license)
            else:
                page = ledger_page_at(license=license, entry=entry)
        else:
            page = ledger_page(license=license, before=_cursor(request))
        next_url = None
        if page.next_cursor is not None:
            at, entry_id = page.next_cursor
            next_url = f"?before={at.isoformat()}&id={entry_id}".replace("+", "%2B")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": license,
            "title": f"Ledger of {license.name}",
            "license": license,
            "balance": balance_get(license),
            "page": page,
            "page_size": PAGE_SIZE,
            "next_url": next_url,
            "is_first_page": not term and _cursor(request) is None,
            "q": term,
            "not_found": not_found,
            "can_refund": can_issue_refunds(request.user),
        }
        return TemplateResponse(request, "admin/console/license_ledger.html", context)


def _cursor(request: HttpRequest) -> tuple[datetime, int] | None:
    before, entry_id = request.GET.get("before"), request.GET.get("id")
    if not before or not entry_id:
        return None
    try:
        at = parse_datetime(before)
        cursor_id = int(entry_id)
    except ValueError as exc:
        raise Http404("Bad page") from exc
    if at is None or at.tzinfo is None:
        raise Http404("Bad page")
    return at, cursor_id
