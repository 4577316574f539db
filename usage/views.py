from django.conf import settings
from django.shortcuts import redirect
from django.views.generic import TemplateView

from accounts.mixins import LicenseMixin
from accounts.selectors import domains_for_license
from billing.selectors import balance_get, prices_current
from usage.selectors import AUTO_REFRESH_SECONDS, bulk_costs, dashboard_get


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
