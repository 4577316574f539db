"""The overview (the customer dashboard, a license's home page): the sections drawn from the
ledger come from the render cache, the rest of the page is drawn on every request."""

from django.utils.decorators import method_decorator
from django.views.generic import TemplateView

from accounts.mixins import LicenseMixin
from dashboard.render_cache import dashboard_sections
from dashboard.selectors.basis import dashboard_basis
from dashboard.selectors.overview import AUTO_REFRESH_SECONDS
from portal.db_router import replica_reads


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
