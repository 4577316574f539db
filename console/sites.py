"""The admin site of the portal: the portal's name, an operations overview as its index,
and a plain 404 for customer logins (the admin does not exist for them)."""

from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from accounts.admin_site import StaffAdminSite
from console.selectors import TODAY_MOVEMENTS, overview_counts, today_start
from usage.selectors import sync_lagging_before

# Apps that only superusers need in the navigation (login lockouts, permission groups).
SUPERUSER_APPS = ("auth", "axes")


class ConsoleAdminSite(StaffAdminSite):
    site_header = "Token & Credit Portal — staff"
    site_title = "Token & Credit Portal staff"
    index_title = "Operations overview"
    index_template = "admin/console/index.html"

    def admin_view(self, view: Callable, cacheable: bool = False) -> Any:
        inner = super().admin_view(view, cacheable)

        def view_for_staff(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            _refuse_customers(request)
            return inner(request, *args, **kwargs)

        return view_for_staff

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        _refuse_customers(request)
        return super().login(request, extra_context)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        apps = super().get_app_list(request, app_label)
        if request.user.is_superuser:
            return apps
        return [app for app in apps if app["app_label"] not in SUPERUSER_APPS]

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        start = today_start()
        day = f"__year={start.year}&{{f}}__month={start.month}&{{f}}__day={start.day}"
        ledger = reverse("admin:billing_ledgerentry_changelist")
        urls = {
            "below": reverse("admin:accounts_license_changelist") + "?below_threshold=yes",
            "failing": reverse("admin:usage_syncstate_changelist") + "?failing=yes",
            "lagging": reverse("admin:usage_syncstate_changelist") + "?failing=lagging",
            "quarantined": reverse("admin:usage_quarantinedrecord_changelist")
            + "?received_at"
            + day.format(f="received_at"),
            **{
                m.name: f"{ledger}?movement={m.name}&occurred_at" + day.format(f="occurred_at")
                for m in TODAY_MOVEMENTS
            },
            "alerts": reverse("admin:billing_balancealert_changelist") + "?sent_at__isempty=1",
            "flags": reverse("admin:billing_chargeflag_changelist") + "?status__exact=open",
        }
        context = {
            "overview": overview_counts(urls=urls),
            "overview_at": timezone.localtime(),
            "overview_timezone": timezone.get_current_timezone_name(),
            "lagging_before": sync_lagging_before(),
            **(extra_context or {}),
        }
        return super().index(request, context)


def _refuse_customers(request: HttpRequest) -> None:
    """A signed-in customer (not staff) gets a plain 404 anywhere under the admin."""
    user = request.user
    if user.is_authenticated and not (user.is_active and user.is_staff):
        raise Http404("Not found")
