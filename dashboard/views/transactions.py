"""All transactions (keyset pages, filters, search) and a transaction's page, where a customer
flags a charge and reads the billing team's answer."""

from datetime import UTC

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.views.generic import TemplateView

from accounts.mixins import LicenseMixin
from billing.flags.services import flag_raise, flags_for_records
from billing.history.transactions import (
    transaction_detail_get,
    transactions_page,
    transactions_search,
)
from dashboard.forms import ChargeFlagForm, TransactionFilterForm
from portal.db_router import replica_reads
from portal.exceptions import ApplicationError


@method_decorator(replica_reads, name="dispatch")
class TransactionListView(LicenseMixin, TemplateView):
    """All transactions: the whole history newest first, one line per API call, keyset-paged
    (billing.history.transactions), with filters and a search by request, record or entry id."""

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
