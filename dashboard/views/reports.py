"""Reports: the list of the reports a license has, and the usage explorer."""

from django.utils.decorators import method_decorator
from django.views.generic import TemplateView

from accounts.mixins import LicenseMixin
from billing.charges.selectors import UsageNotReady, UsageRangeError
from dashboard.forms import UsageExplorerForm
from dashboard.selectors.explorer import explorer_default_range, usage_explorer_get
from portal.db_router import replica_reads


class ReportListView(LicenseMixin, TemplateView):
    """ "Back to Reports": the reports this license has (the dashboard, the CSV history)."""

    template_name = "dashboard/reports.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(nav_current="reports", **kwargs)


@method_decorator(replica_reads, name="dispatch")
class UsageExplorerView(LicenseMixin, TemplateView):
    """Reports → Usage explorer: usage over a range the customer chooses, by local day or
    month and by service or endpoint (dashboard.selectors.explorer, from the rollups)."""

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
