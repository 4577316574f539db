import json
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.formats import date_format
from django.views import View
from django.views.generic import TemplateView

from accounts.mixins import LicenseMixin
from accounts.selectors import domains_for_license
from billing.selectors import balance_get, prices_current
from portal.ratelimit import LicenseRateLimitMixin, wait_message
from usage.selectors import (
    AUTO_REFRESH_SECONDS,
    bulk_costs,
    dashboard_get,
    refresh_wait_seconds,
    sync_state_get,
)
from usage.services import usage_refresh_claim, usage_sync_license
from usage.tasks import sync_enqueue
from usage.upstream import upstream_ping


class DashboardView(LicenseMixin, TemplateView):
    """The customer dashboard: every section of the guide, from totals and rollups."""

    template_name = "usage/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["domains"] = domains_for_license(self.license)
        context["dashboard"] = dashboard_get(license=self.license)
        context["auto_refresh_seconds"] = AUTO_REFRESH_SECONDS
        context["nav_current"] = "overview"
        return context


class ReportListView(LicenseMixin, TemplateView):
    """ "Back to Reports": the reports this license has (the dashboard, the CSV history)."""

    template_name = "usage/reports.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(nav_current="reports", **kwargs)


class HelpView(LicenseMixin, TemplateView):
    """ "[?] Help": each section explained, with the prices in effect now."""

    template_name = "usage/help.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(nav_current="help", **kwargs)
        context["prices"] = bulk_costs(prices_current())
        context["support_email"] = settings.SUPPORT_EMAIL
        return context


class CreditPurchaseView(LicenseMixin, TemplateView):
    """ "Purchase Credits": the payment page when PURCHASE_URL is set, otherwise how to buy."""

    template_name = "usage/purchase.html"

    def get(self, request, *args, **kwargs):
        if settings.PURCHASE_URL:
            return redirect(settings.PURCHASE_URL)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["balance"] = balance_get(self.license)
        context["support_email"] = settings.SUPPORT_EMAIL
        return context


def _as_of(moment: datetime | None, license) -> str:
    """ "14:30" today, "Nov 25, 14:30" before, in the license's time zone."""
    if moment is None:
        return ""
    local = timezone.localtime(moment, license.tzinfo)
    today = timezone.localtime(timezone.now(), license.tzinfo).date()
    return date_format(local, "H:i" if local.date() == today else "M j, H:i")


def _new_calls(n: int) -> str:
    return f"{n} new API call{'' if n == 1 else 's'}"


class UsageRefreshView(LicenseMixin, View):
    """Refresh Data: sync this license now, then back to the dashboard with a message."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        license = self.license
        dashboard = redirect("usage:dashboard", license_id=license.public_id)
        if not usage_refresh_claim(license=license):
            # The same shape as the rate limits on Test API and the CSV download.
            messages.warning(
                request,
                wait_message(
                    reason="Refreshed a moment ago",
                    action="refresh",
                    seconds=max(1, refresh_wait_seconds(license)),
                ),
            )
            return dashboard
        result = usage_sync_license(
            license=license,
            trigger="refresh",
            time_budget_seconds=settings.USAGE_REFRESH_BUDGET_SECONDS,
        )
        if not result.ran:
            messages.info(request, "An update is already running — fresh numbers are on their way.")
        elif result.error:
            as_of = _as_of(sync_state_get(license).last_success_at, license)
            messages.warning(
                request,
                f"Upstream is not answering — showing data as of {as_of}."
                if as_of
                else "Upstream is not answering — no usage has arrived yet.",
            )
        elif not result.complete:
            if sync_enqueue(license_id=license.pk, trigger="refresh"):
                messages.info(
                    request,
                    "More usage is still arriving — the rest will appear within a few minutes.",
                )
            else:
                # The broker (Redis) is down: what the request fetched is saved and shown;
                # the rest waits for the next sync that can run.
                messages.warning(
                    request,
                    f"Data partly refreshed ({_new_calls(result.records_charged)}) — "
                    "refreshing the rest is unavailable right now. Please try again in a few minutes.",
                )
        elif result.records_charged:
            messages.success(request, f"Data refreshed: {_new_calls(result.records_charged)}.")
        else:
            messages.success(request, "Data refreshed: nothing new since the last update.")
        return dashboard


class ApiTestView(LicenseMixin, LicenseRateLimitMixin, TemplateView):
    """Test API: the masked key, an example request, and a live ping of the upstream.

    Each ping is a request to the upstream on the customer's behalf, so pings are limited
    per license (TEST_API_RATE_LIMIT per TEST_API_RATE_WINDOW_SECONDS); the page itself is not.
    """

    template_name = "usage/test_api.html"
    rate_scope = "test_api"
    rate_limited_methods = ("post",)
    rate_limited_noun = "Test requests"
    rate_limited_action = "send another"
    rate_limited_redirect = "usage:test_api"

    @property
    def rate_limit(self) -> int:
        return settings.TEST_API_RATE_LIMIT

    @property
    def rate_window(self) -> int:
        return settings.TEST_API_RATE_WINDOW_SECONDS

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        url = f"{settings.UPSTREAM_URL.rstrip('/')}/v1/ping?license={self.license.masked_key}"
        context["example_request"] = f'curl -H "Authorization: Bearer $API_TOKEN" \\\n     "{url}"'
        return context

    def post(self, request, *args, **kwargs):
        ping = upstream_ping(license_key=self.license.key)
        body = json.dumps(ping.body, indent=2, sort_keys=True) if ping.body is not None else ""
        # The page shows the key masked; so does the upstream's answer.
        body = body.replace(self.license.key, self.license.masked_key)
        return self.render_to_response(self.get_context_data(ping=ping, ping_body=body))
