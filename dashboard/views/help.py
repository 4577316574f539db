"""Help and Test API: each section explained with the prices in effect now; the customer's
real API address and key, examples that work as they are, and live checks of the upstream and
of the portal's own API."""

import json

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.generic import TemplateView

from accounts.mixins import LicenseMixin
from accounts.services import license_key_reveal
from api.client import portal_api_check
from api.selectors import api_keys_for_license
from billing.ledger.kinds import EXPIRY, MOVEMENTS
from billing.prices.selectors import prices_current
from dashboard.selectors.prices import bulk_costs, cached_saving_percent
from portal.ratelimit import LicenseRateLimitMixin
from usage.upstream import PingResult
from usage.upstream_web import UpstreamCheck, upstream_checks, upstream_ping, upstream_web_slot

# What each movement of the balance is, in the customer's words (its label, sign and place
# in the bridge are billing's: billing.ledger.kinds.MOVEMENTS).
MOVEMENT_HELP = {
    "purchase": "Credit you bought, by card or recorded by our billing team: paid credit.",
    "purchase_refund": "Money paid back to your card for a purchase; it leaves your balance.",
    "credit": (
        "Credit given to you (goodwill, a promotion, sign-up credit): promotional credit, "
        "which may have an expiry date."
    ),
    "usage_refund": "A usage charge given back, in full or in part.",
    "usage": "What your API calls cost, one line per service a call used.",
    "expiry": (
        "What was left of a credit when it expired: it leaves your balance, once, on the "
        "date it was due."
    ),
}


class HelpView(LicenseMixin, TemplateView):
    """ "[?] Help": each section explained, with the prices in effect now."""

    template_name = "dashboard/help.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(nav_current="help", **kwargs)
        prices = prices_current()
        context["prices"] = bulk_costs(prices)
        context["cached_saving"] = cached_saving_percent(prices)
        context["support_email"] = settings.SUPPORT_EMAIL
        context["movements"] = [(m, MOVEMENT_HELP[m.name]) for m in MOVEMENTS]
        context["labels_in"] = [m.label.lower() for m in MOVEMENTS if m.sign > 0]
        context["labels_out"] = [m.label.lower() for m in MOVEMENTS if m.sign < 0]
        context["expiry_label"] = EXPIRY.label
        return context


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
                    "A test of this license is already running — send another once it has "
                    "answered.",
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
