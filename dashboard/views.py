"""The customer pages: the dashboard and everything linked from its navigation.

Each view resolves its license through LicenseMixin (a stranger gets a 404) and reads
through the selectors of billing, usage and this app; writes go to their services.
"""

import json
import logging
from datetime import UTC, date, datetime

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.views import View
from django.views.generic import FormView, TemplateView

from accounts.mixins import LicenseMixin
from accounts.models import AlertRecipient, Membership
from accounts.services import license_key_reveal
from api.client import portal_api_check
from api.selectors import api_keys_for_license
from api.services import api_key_create, api_key_revoke
from billing.alerts import license_alert_settings_update
from billing.flags import flag_raise, flags_for_records
from billing.history import (
    history_csv_lines,
    history_filename,
    ledger_history_csv_pages,
    ledger_history_exists,
)
from billing.prices import prices_current
from billing.reconciliation import month_parse
from billing.selectors import UsageNotReady, UsageRangeError, balance_get
from billing.statements import statement_get, statement_months
from billing.transactions import (
    transaction_detail_get,
    transactions_page,
    transactions_search,
)
from dashboard.explorer import explorer_default_range, usage_explorer_get
from dashboard.forms import (
    ApiKeyForm,
    ChargeFlagForm,
    LicenseAlertSettingsForm,
    TransactionFilterForm,
    UsageExplorerForm,
)
from dashboard.payment_views import CardPurchaseView
from dashboard.render_cache import dashboard_sections
from dashboard.selectors import (
    AUTO_REFRESH_SECONDS,
    bulk_costs,
    cached_saving_percent,
    dashboard_basis,
)
from dashboard.statement_pdf import statement_pdf
from payments.stripe_client import payments_enabled
from portal.db_router import replica_reads
from portal.exceptions import ApplicationError
from portal.ratelimit import LicenseRateLimitMixin, history_export_hit, wait_message
from usage.selectors import refresh_wait_seconds, sync_state_get
from usage.services import SyncOutcome, usage_refresh_claim
from usage.tasks import usage_sync_in_request
from usage.upstream import (
    PingResult,
    UpstreamCheck,
    upstream_checks,
    upstream_ping,
    upstream_web_slot,
)

logger = logging.getLogger(__name__)


@method_decorator(replica_reads, name="dispatch")
class DashboardView(LicenseMixin, TemplateView):
    """The customer dashboard: every section of docs/product.md, from totals and rollups.

    The sections drawn from the ledger come from the render cache (dashboard/render_cache.py)
    while what they show is unchanged; the rest of the page is drawn on every request."""

    template_name = "dashboard/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["domains"] = self.domains  # read with the license (LicenseMixin)
        basis = dashboard_basis(license=self.license)
        context["basis"] = basis
        context["sections"] = dashboard_sections(basis)
        context["auto_refresh_seconds"] = AUTO_REFRESH_SECONDS
        context["nav_current"] = "overview"
        return context


class ReportListView(LicenseMixin, TemplateView):
    """ "Back to Reports": the reports this license has (the dashboard, the CSV history)."""

    template_name = "dashboard/reports.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(nav_current="reports", **kwargs)


@method_decorator(replica_reads, name="dispatch")
class UsageExplorerView(LicenseMixin, TemplateView):
    """Reports → Usage explorer: usage over a range the customer chooses, by local day or
    month and by service or endpoint (dashboard.explorer, from the rollups)."""

    template_name = "dashboard/usage_explorer.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(nav_current="reports", **kwargs)
        form = UsageExplorerForm(self.request.GET or None)
        context.update(form=form, explorer=None, not_ready="")
        if form.is_bound and not form.is_valid():
            return context
        data = form.cleaned_data if form.is_bound else {}
        granularity = data.get("granularity") or "day"
        group_by = data.get("group_by") or "service"
        start, end = explorer_default_range(
            self.license, granularity, end=data.get("to"), start=data.get("from")
        )
        if not form.is_bound:  # the fields show the range the page shows
            form.initial = {"from": start, "to": end, "granularity": granularity}
        try:
            context["explorer"] = usage_explorer_get(
                license=self.license,
                start=start,
                end=end,
                granularity=granularity,
                group_by=group_by,
            )
        except UsageRangeError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        except UsageNotReady as exc:
            context["not_ready"] = exc.message
        return context

    def render_to_response(self, context, **response_kwargs):
        if context["form"].errors:
            response_kwargs.setdefault("status", 400)
        return super().render_to_response(context, **response_kwargs)


class HelpView(LicenseMixin, TemplateView):
    """ "[?] Help": each section explained, with the prices in effect now."""

    template_name = "dashboard/help.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(nav_current="help", **kwargs)
        prices = prices_current()
        context["prices"] = bulk_costs(prices)
        context["cached_saving"] = cached_saving_percent(prices)
        context["support_email"] = settings.SUPPORT_EMAIL
        return context


class CreditPurchaseView(LicenseMixin, TemplateView):
    """ "Purchase Credits": the payment page when PURCHASE_URL is set, otherwise how to buy."""

    template_name = "dashboard/purchase.html"

    def dispatch(self, request, *args, **kwargs):
        # With Stripe configured (and no outside payment page), customers pay by card here.
        if not settings.PURCHASE_URL and payments_enabled():
            return CardPurchaseView.as_view()(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

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
            as_of = _as_of(sync_state_get(license).known_current_at, license)
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
    """Test API: the customer's real API address and key, examples that work as they are,
    and real checks — each read the upstream offers, and the portal's own API with one of
    the customer's API keys.

    The license key is masked unless an owner asks to reveal it (audited). No message
    carries a full key: the upstream's answers are masked before they are shown. Checks
    are requests on the customer's behalf, so they are limited per license
    (TEST_API_RATE_LIMIT per TEST_API_RATE_WINDOW_SECONDS); the page itself is not.
    """

    template_name = "dashboard/test_api.html"
    rate_scope = "test_api"
    rate_limited_handlers = ("post",)
    rate_limited_noun = "Test requests"
    rate_limited_action = "send another"
    rate_limited_redirect = "dashboard:test_api"
    extra_context = {"nav_current": "test_api"}

    @property
    def rate_limit(self) -> int:
        return settings.TEST_API_RATE_LIMIT

    @property
    def rate_window(self) -> int:
        return settings.TEST_API_RATE_WINDOW_SECONDS

    def _mask(self, text: str) -> str:
        return text.replace(self.license.key, self.license.masked_key)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        revealed = kwargs.get("revealed", False)
        key = self.license.key if revealed else self.license.masked_key
        base = settings.CUSTOMER_API_BASE_URL.rstrip("/")
        api_base = settings.PORTAL_API_BASE_URL.rstrip("/")
        context.update(
            api_base_url=base,
            portal_api_base_url=api_base,
            license_key=key,
            revealed=revealed,
            example_curl=(
                f"curl {base}/v1/chat/completions \\\n"
                f'  -H "Authorization: Bearer {key}" \\\n'
                '  -H "Content-Type: application/json" \\\n'
                """  -d '{"model": "default", "messages": [{"role": "user", "content": "Hello"}]}'"""
            ),
            example_python=(
                "import httpx\n\n"
                f'response = httpx.post("{base}/v1/chat/completions",\n'
                f'    headers={{"Authorization": "Bearer {key}"}},\n'
                '    json={"model": "default", "messages": [{"role": "user", "content": "Hello"}]})\n'
                "print(response.json())"
            ),
            example_portal_api=(
                f'curl -H "Authorization: Bearer $PORTAL_API_KEY" \\\n'
                f"     {api_base}/licenses/{self.license.public_id}/balance"
            ),
            api_keys=[k for k in api_keys_for_license(self.license) if k.state == "active"],
        )
        return context

    def post(self, request, *args, **kwargs):
        action = request.POST.get("action", "check")
        if action == "reveal":
            if self.role != "owner":
                return render(
                    request, "accounts/owner_only.html", {"license": self.license}, status=403
                )
            license_key_reveal(acting_user=self.user, license=self.license)
            return self.render_to_response(self.get_context_data(revealed=True))
        if action == "api":
            check = portal_api_check(
                raw_key=request.POST.get("api_key", ""),
                license_public_id=str(self.license.public_id),
            )
            return self.render_to_response(self.get_context_data(api_check=check))
        # At most one upstream call of this license in flight from the web (issue 18).
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
            checks = []
            if ping.status_code is not None:  # an upstream that answers: ask its other reads
                checks = [
                    UpstreamCheck(c.name, c.ok, c.status_code, c.latency_ms, self._mask(c.summary))
                    for c in upstream_checks(license_key=self.license.key)[1:]
                ]
        ping = PingResult(
            ping.ok, ping.status_code, ping.latency_ms, ping.body, self._mask(ping.error)
        )
        body = json.dumps(ping.body, indent=2, sort_keys=True) if ping.body is not None else ""
        return self.render_to_response(
            self.get_context_data(ping=ping, ping_body=self._mask(body), checks=checks)
        )


class ApiKeysView(LicenseMixin, TemplateView):
    """API keys: everyone sees the list; owners make keys (shown once) and revoke them."""

    template_name = "dashboard/api_keys.html"
    extra_context = {"nav_current": "api_keys"}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["keys"] = list(api_keys_for_license(self.license))
        context.setdefault("form", kwargs.get("form") or ApiKeyForm())
        context["reference_url"] = reverse("api_reference")
        context["portal_api_base_url"] = settings.PORTAL_API_BASE_URL.rstrip("/")
        return context

    def post(self, request, *args, **kwargs):
        if self.role != "owner":
            return render(
                request, "accounts/owner_only.html", {"license": self.license}, status=403
            )
        form = ApiKeyForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        try:
            key, raw = api_key_create(
                acting_user=self.user,
                license=self.license,
                name=form.cleaned_data["name"],
                expires_at=form.expires_at(self.license),
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return self.render_to_response(self.get_context_data(form=form), status=400)
        example = (
            f'curl -H "Authorization: Bearer {raw}" \\\n'
            f"     {settings.PORTAL_API_BASE_URL.rstrip('/')}/licenses/"
            f"{self.license.public_id}/balance"
        )
        response = self.render_to_response(
            self.get_context_data(new_key=key, new_secret=raw, new_example=example)
        )
        response["Cache-Control"] = "no-store"  # the secret is on this page, once
        return response


class ApiKeyRevokeView(LicenseMixin, View):
    owner_only = True

    def post(self, request, *args, **kwargs):
        key = get_object_or_404(api_keys_for_license(self.license), pk=kwargs["key_id"])
        api_key_revoke(acting_user=self.user, key=key)
        messages.success(request, f"API key {key.display} ({key.name}) revoked.")
        return redirect("dashboard:api_keys", license_id=self.license.public_id)


NO_HISTORY_MESSAGE = "No transaction history to download yet."
NO_MATCH_MESSAGE = "No transactions match the chosen filters."


@method_decorator(replica_reads, name="dispatch")
class HistoryCsvView(LicenseMixin, LicenseRateLimitMixin, View):
    """Download History: the license's whole ledger, newest first, streamed as CSV.

    Streamed page by page (keyset on the ledger_license_recent index), so the first
    bytes leave at once and memory stays flat however long the history is. A download of
    a long history is real work for the database, so downloads are limited per license
    (HISTORY_CSV_RATE_LIMIT per HISTORY_CSV_RATE_WINDOW_SECONDS).
    """

    rate_limited_handlers = ("get",)
    rate_limited_page = True  # a 429 page, never a 200 page where a file was expected

    def rate_limit_refusal(self, request):
        # One limit per license with the API's history.csv (portal.ratelimit).
        return history_export_hit(license_id=self.license.pk, requester=str(request.user.pk))

    def get(self, request, *args, **kwargs):
        dashboard = self.license.get_absolute_url()
        # The filters of All transactions (its search and page position play no part).
        form = TransactionFilterForm(request.GET)
        if not form.is_valid():
            messages.error(request, form.error_message("download the history"))
            return redirect(dashboard)
        flt = form.transaction_filter(self.license)
        if not ledger_history_exists(self.license, flt):
            no_history = flt.is_empty or not ledger_history_exists(self.license)
            messages.info(request, NO_HISTORY_MESSAGE if no_history else NO_MATCH_MESSAGE)
            return redirect(dashboard)
        tz = self.license.tzinfo
        filename = history_filename(timezone.now(), tz)
        logger.info(
            "history download license=%s user=%s from=%s to=%s type=%s service=%s",
            self.license.key,
            request.user.pk,
            flt.start,
            flt.end,
            flt.kind,
            flt.service,
        )
        response = StreamingHttpResponse(
            # With a BOM: the file is for spreadsheets (Excel reads UTF-8 by it).
            history_csv_lines(ledger_history_csv_pages(self.license, flt), bom=True),
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


# --- transactions, flags and statements ------------------------------------------------


@method_decorator(replica_reads, name="dispatch")
class TransactionListView(LicenseMixin, TemplateView):
    """All transactions: the whole history newest first, one line per API call, keyset-paged
    (billing.transactions), with filters and a search by request, record or entry id."""

    template_name = "dashboard/transactions.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(nav_current="transactions", **kwargs)
        form = TransactionFilterForm(self.request.GET or None)
        page = None
        results = None
        if self.request.GET and not form.is_valid():
            context.update(form=form, page=None, flags={})
            return context
        data = form.cleaned_data if form.is_bound else {}
        if data.get("q"):
            results = transactions_search(self.license, data["q"])
            items = results
        else:
            page = transactions_page(
                self.license,
                form.transaction_filter(self.license) if form.is_bound else None,
                before=data.get("before_cursor"),
                after=data.get("after_cursor"),
                oldest=bool(data.get("oldest")),
            )
            items = page.transactions
        query = self.request.GET.copy()
        for name in ("before", "after", "oldest"):
            query.pop(name, None)
        download = query.copy()
        download.pop("q", None)
        context.update(
            download_query=download.urlencode(),
            form=form,
            page=page,
            results=results,
            items=items,
            flags=flags_for_records(self.license, [t.record_id for t in items if t.is_call]),
            filter_query=query.urlencode(),
        )
        return context


@method_decorator(replica_reads, name="dispatch")
class TransactionDetailView(LicenseMixin, TemplateView):
    """A transaction's page: a call's arithmetic, a refund's charge and reason, a purchase's
    payment; the flag on a charge and its answer."""

    template_name = "dashboard/transaction.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(nav_current="transactions", **kwargs)
        detail = transaction_detail_get(self.license, kwargs["entry_id"])
        if detail is None:
            raise Http404("No such transaction.")
        tx = detail.transaction
        flag = (
            flags_for_records(self.license, [tx.record_id]).get(tx.record_id)
            if tx.is_call
            else None
        )
        context.update(
            detail=detail,
            tx=tx,
            flag=flag,
            flag_form=kwargs.get("flag_form") or ChargeFlagForm(),
            utc_label=f"{tx.occurred_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
        )
        return context

    def post(self, request, *args, **kwargs):
        """Flag this charge."""
        form = ChargeFlagForm(request.POST)
        if form.is_valid():
            try:
                flag_raise(
                    acting_user=request.user,
                    license=self.license,
                    entry_id=kwargs["entry_id"],
                    message=form.cleaned_data["message"],
                )
            except ApplicationError as exc:
                form.add_error("message" if exc.field == "message" else None, str(exc))
            else:
                messages.success(
                    request,
                    "Thank you — the billing team will look at this charge and answer here and by email.",
                )
                return redirect(request.path)
        return self.render_to_response(self.get_context_data(flag_form=form, **kwargs))


@method_decorator(replica_reads, name="dispatch")
class StatementListView(LicenseMixin, TemplateView):
    template_name = "dashboard/statements.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(nav_current="statements", **kwargs)
        context["months"] = statement_months(self.license)
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


@method_decorator(replica_reads, name="dispatch")
class StatementPdfView(LicenseMixin, LicenseRateLimitMixin, View):
    """A month's statement as a PDF. Building it is real work, so downloads are limited per
    login and license (STATEMENT_PDF_RATE_LIMIT per STATEMENT_PDF_RATE_WINDOW_SECONDS),
    HEAD included, and a HEAD gets the headers without the PDF being built (issue 18)."""

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

    def _response(self, month: date, content: bytes = b"") -> HttpResponse:
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = (
            f'attachment; filename="statement_{self.license.key}_{month:%Y-%m}.pdf"'
        )
        response["Cache-Control"] = "no-store"
        return response

    def head(self, request, *args, **kwargs):
        return self._response(_statement_month(self.license, kwargs["month"]))

    def get(self, request, *args, **kwargs):
        month = _statement_month(self.license, kwargs["month"])
        statement = statement_get(license=self.license, month=month)
        generated = f"{timezone.localtime(timezone.now(), self.license.tzinfo):%Y-%m-%d %H:%M}"
        return self._response(month, statement_pdf(statement, generated=generated))
