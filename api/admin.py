"""Webhook endpoints in the staff admin, read-only: customers make and switch their
endpoints on their own pages; staff look (the signing secret is never shown).

api sits above the console, so it gives the console what staff need of it through
console.hooks: a webhook panel on the license page and the count of failing endpoints on
the operations overview, linking to the list below filtered to them."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode

from accounts.models import License
from api.models import WebhookEndpoint
from api.selectors import webhook_endpoints_failing, webhook_endpoints_health
from console.hooks import OverviewCount, license_panel_register, overview_count_register
from portal.admin import ReadOnlyAdminMixin

FAILING_LABEL = "Webhook endpoints failing"


class FailingFilter(admin.SimpleListFilter):
    title = "deliveries"
    parameter_name = "failing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Failing, or switched off by failures")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset & webhook_endpoints_failing()
        return queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "url", "license", "is_active", "failing_since", "disabled_reason", "created_at",
    )  # fmt: skip
    list_filter = (FailingFilter, "is_active")
    list_select_related = ("license",)
    search_fields = ("url", "license__key", "license__name")
    exclude = ("secret",)
    ordering = ("-failing_since", "-created_at")


def webhook_panel(license: License) -> dict[str, Any]:
    return {
        "endpoints": webhook_endpoints_health(license),
        "list_url": reverse("admin:api_webhookendpoint_changelist")
        + "?"
        + urlencode({"q": license.key}),
    }


def webhook_failures_count() -> OverviewCount:
    count = webhook_endpoints_failing().count()
    url = reverse("admin:api_webhookendpoint_changelist") + "?failing=yes"
    return OverviewCount(FAILING_LABEL, count, url, count > 0)


license_panel_register(template="admin/api/license_webhooks_panel.html", load=webhook_panel)
overview_count_register(label=FAILING_LABEL, load=webhook_failures_count)
