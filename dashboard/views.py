"""The customer pages: the dashboard and everything linked from its navigation.

Each view resolves its license through LicenseMixin (a stranger gets a 404) and reads
through the selectors of billing, usage and this app; writes go to their services.
"""

import json
import logging
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.formats import date_format
from django.views import View
from django.views.generic import FormView, TemplateView

from accounts.mixins import LicenseMixin
from accounts.models import AlertRecipient, Membership
from accounts.selectors import domains_for_license
from billing.alerts import license_alert_settings_update
from billing.history import (
    HistoryFilter,
    history_csv_lines,
    history_filename,
    ledger_history_csv_pages,
    ledger_history_exists,
)
from billing.prices import prices_current
from billing.selectors import balance_get
from dashboard.forms import HistoryFilterForm, LicenseAlertSettingsForm
from dashboard.selectors import AUTO_REFRESH_SECONDS, bulk_costs, dashboard_get
from portal.ratelimit import LicenseRateLimitMixin, wait_message
from usage.selectors import refresh_wait_seconds, sync_state_get
from usage.services import SyncOutcome, usage_refresh_claim
from usage.tasks import usage_sync_in_request
from usage.upstream import upstream_ping, upstream_web_slot

logger = logging.getLogger(__name__)


class DashboardView(LicenseMixin, TemplateView):
    """The customer dashboard: every section of docs/product.md, from totals and rollups."""

    template_name = "dashboard/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["domains"] = domains_for_license(self.license)
        context["dashboard"] = dashboard_get(license=self.license)
        context["auto_refresh_seconds"] = AUTO_REFRESH_SECONDS
        context["nav_current"] = "overview"
        return context


class ReportListView(LicenseMixin, TemplateView):
    """ "Back to Reports": the reports this license has (the dashboard, the CSV history)."""

    template_name = "dashboard/reports.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(nav_current="reports", **kwargs)


class HelpView(LicenseMixin, TemplateView):
    """ "[?] Help": each section explained, with the prices in effect now."""

    template_name = "dashboard/help.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(nav_current="help", **kwargs)
        context["prices"] = bulk_costs(prices_current())
        context["support_email"] = settings.SUPPORT_EMAIL
        return context


class CreditPurchaseView(LicenseMixin, TemplateView):
    """ "Purchase Credits": the payment page when PURCHASE_URL is set, otherwise how to buy."""

    template_name = "dashboard/purchase.html"

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


BUSY_MESSAGE = "An update is already running — fresh numbers are on their way."


def _new_calls(n: int) -> str:
    return f"{n} new API call{'' if n == 1 else 's'}"


class UsageRefreshView(LicenseMixin, View):
    """Refresh Data: sync this license now, then back to the dashboard with a message."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        license = self.license
        dashboard = redirect(license.get_absolute_url())
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
        budget = settings.USAGE_REFRESH_BUDGET_SECONDS
        with upstream_web_slot(license.pk, seconds=budget + 30) as slot:
            if not slot:  # a Test API ping of this license is waiting on the upstream
                messages.info(request, BUSY_MESSAGE)
                return dashboard
            result = usage_sync_in_request(
                license=license, trigger="refresh", time_budget_seconds=budget
            )
        outcome = result.outcome
        if outcome is SyncOutcome.BUSY:
            messages.info(request, BUSY_MESSAGE)
        elif outcome is SyncOutcome.FAILED:
            as_of = _as_of(sync_state_get(license).last_success_at, license)
            messages.warning(
                request,
                f"Upstream is not answering — showing data as of {as_of}."
                if as_of
                else "Upstream is not answering — no usage has arrived yet.",
            )
        elif outcome is SyncOutcome.PARTIAL and result.continued:
            messages.info(
                request,
                "More usage is still arriving — the rest will appear within a few minutes.",
            )
        elif outcome is SyncOutcome.PARTIAL:
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

    template_name = "dashboard/test_api.html"
    rate_scope = "test_api"
    rate_limited_handlers = ("post",)
    rate_limited_noun = "Test requests"
    rate_limited_action = "send another"
    rate_limited_redirect = "dashboard:test_api"

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
        seconds = settings.UPSTREAM_WEB_TIMEOUT_SECONDS + 30
        with upstream_web_slot(self.license.pk, seconds=seconds) as slot:
            if not slot:
                messages.info(
                    request,
                    "A request of this license to the upstream is already running — "
                    "send another once it has answered.",
                )
                return redirect("dashboard:test_api", license_id=self.license.public_id)
            ping = upstream_ping(license_key=self.license.key)
        body = json.dumps(ping.body, indent=2, sort_keys=True) if ping.body is not None else ""
        # The page shows the key masked; so does the upstream's answer.
        body = body.replace(self.license.key, self.license.masked_key)
        return self.render_to_response(self.get_context_data(ping=ping, ping_body=body))


NO_HISTORY_MESSAGE = "No transaction history to download yet."
NO_MATCH_MESSAGE = "No transactions match the chosen dates and type."


class HistoryCsvView(LicenseMixin, LicenseRateLimitMixin, View):
    """Download History: the license's whole ledger, newest first, streamed as CSV.

    Streamed page by page (keyset on the ledger_license_recent index), so the first
    bytes leave at once and memory stays flat however long the history is. A download of
    a long history is real work for the database, so downloads are limited per license
    (HISTORY_CSV_RATE_LIMIT per HISTORY_CSV_RATE_WINDOW_SECONDS).
    """

    rate_scope = "history_csv"
    rate_limited_handlers = ("get",)
    rate_limited_noun = "History downloads"
    rate_limited_action = "download it"

    @property
    def rate_limit(self) -> int:
        return settings.HISTORY_CSV_RATE_LIMIT

    @property
    def rate_window(self) -> int:
        return settings.HISTORY_CSV_RATE_WINDOW_SECONDS

    def get(self, request, *args, **kwargs):
        dashboard = self.license.get_absolute_url()
        form = HistoryFilterForm(request.GET)
        if not form.is_valid():
            messages.error(request, form.error_message())
            return redirect(dashboard)
        flt = HistoryFilter.for_local_dates(self.license, **form.filter_kwargs())
        if not ledger_history_exists(self.license, flt):
            no_history = flt.is_empty or not ledger_history_exists(self.license)
            messages.info(request, NO_HISTORY_MESSAGE if no_history else NO_MATCH_MESSAGE)
            return redirect(dashboard)
        tz = self.license.tzinfo
        filename = history_filename(timezone.now(), tz)
        logger.info(
            "history download license=%s user=%s from=%s to=%s type=%s",
            self.license.key,
            request.user.pk,
            flt.start,
            flt.end,
            flt.kind,
        )
        response = StreamingHttpResponse(
            history_csv_lines(ledger_history_csv_pages(self.license, flt)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        # A customer's money history: never kept by a shared cache or the browser's.
        response["Cache-Control"] = "no-store"
        return response


class AlertSettingsView(LicenseMixin, FormView):
    """An owner sets the low-balance threshold and who gets the alerts."""

    template_name = "dashboard/alert_settings.html"
    form_class = LicenseAlertSettingsForm
    owner_only = True
    extra_context = {"nav_current": "settings"}

    def memberships(self):
        return list(
            Membership.objects.for_license(self.license)
            .select_related("user")
            .order_by("user__email")
        )

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "memberships": self.memberships()}

    def get_initial(self):
        return {
            "low_balance_threshold": self.license.low_balance_threshold,
            "alert_members": [str(m.pk) for m in self.memberships() if m.receives_alerts],
            "extra_emails": "\n".join(
                AlertRecipient.objects.for_license(self.license)
                .order_by("email")
                .values_list("email", flat=True)
            ),
        }

    def form_valid(self, form):
        try:
            license_alert_settings_update(
                acting_user=self.user,
                license=self.license,
                threshold=form.cleaned_data["low_balance_threshold"],
                alert_membership_ids=[int(pk) for pk in form.cleaned_data["alert_members"]],
                extra_emails=form.cleaned_data["extra_emails"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            return self.form_invalid(form)
        messages.success(self.request, "Alert settings saved.")
        return redirect("dashboard:alert_settings", license_id=self.license.public_id)
