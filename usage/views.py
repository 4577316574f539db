from django.views.generic import TemplateView

from accounts.mixins import LicenseMixin
from accounts.selectors import domains_for_license
from billing.selectors import balance_get
from usage.selectors import sync_state_get


class DashboardView(LicenseMixin, TemplateView):
    template_name = "usage/dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["domains"] = domains_for_license(self.license)
        context["balance"] = balance_get(self.license)
        context["sync_state"] = sync_state_get(self.license)
        return context
