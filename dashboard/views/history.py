"""Download History: the license's ledger streamed as CSV, with the filters of All
transactions, limited per license."""

import logging

from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View

from accounts.mixins import LicenseMixin
from billing.history.export import (
    history_csv_lines,
    history_filename,
    ledger_history_csv_pages,
    ledger_history_exists,
)
from dashboard.forms import TransactionFilterForm
from portal.db_router import replica_reads
from portal.ratelimit import LicenseRateLimitMixin, history_export_hit

logger = logging.getLogger(__name__)


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
            return self.nothing_to_download(request, flt)
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

    def nothing_to_download(self, request, flt) -> HttpResponse:
        """No entry to put in the file: a page saying so, with a 404, never a 200 page
        where a file was expected (a download would keep that HTML as the CSV)."""
        no_history = flt.is_empty or not ledger_history_exists(self.license)
        if no_history:
            back, back_label = self.license.get_absolute_url(), "Back to the dashboard"
        else:  # All transactions with the same filters, to change them
            query = request.GET.copy()
            back = reverse("dashboard:transactions", kwargs={"license_id": self.license.public_id})
            back += f"?{query.urlencode()}" if query else ""
            back_label = "Change the filters"
        return render(
            request,
            "dashboard/nothing_to_download.html",
            {
                "license": self.license,
                "message": NO_HISTORY_MESSAGE if no_history else NO_MATCH_MESSAGE,
                "no_history": no_history,
                "back": back,
                "back_label": back_label,
            },
            status=404,
        )
