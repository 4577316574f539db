"""Refresh Data: sync this license now (within a time budget, the rest handed to a worker),
then back to the dashboard with a message saying what came of it."""

from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.formats import date_format
from django.views import View

from accounts.mixins import LicenseMixin
from portal.ratelimit import wait_message
from usage.selectors import refresh_wait_seconds, sync_state_get
from usage.services.refresh import usage_refresh_claim
from usage.services.results import SyncOutcome
from usage.tasks import usage_sync_in_request
from usage.upstream_web import upstream_web_slot


def _as_of(moment: datetime | None, license) -> str:
    """ "14:30" today, "Nov 25, 14:30" before, in the license's time zone."""
    if moment is None:
        return ""
    local = timezone.localtime(moment, license.tzinfo)
    return date_format(local, "H:i" if local.date() == license.local_date() else "M j, H:i")


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
