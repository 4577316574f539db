"""Customer pages of the billing app: the CSV history download."""

import logging

from django.conf import settings
from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views import View

from accounts.mixins import LicenseMixin
from billing.exports import history_csv_lines, history_filename
from billing.forms import HistoryFilterForm
from billing.selectors import HistoryFilter, ledger_history_csv_pages, ledger_history_exists
from portal.ratelimit import LicenseRateLimitMixin

logger = logging.getLogger(__name__)

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
    rate_limited_methods = ("get",)
    rate_limited_noun = "History downloads"
    rate_limited_action = "download it"

    @property
    def rate_limit(self) -> int:
        return settings.HISTORY_CSV_RATE_LIMIT

    @property
    def rate_window(self) -> int:
        return settings.HISTORY_CSV_RATE_WINDOW_SECONDS

    def get(self, request, *args, **kwargs):
        dashboard = reverse("usage:dashboard", kwargs={"license_id": self.license.public_id})
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
