"""The root URLs: the composition root that names each app's URLs."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from portal.metrics import MetricsView
from portal.views import HealthView

# Every customer page lives under /l/<license_id>/ and resolves the license through
# accounts.mixins.LicenseMixin (tests/accounts/test_isolation.py walks them all).
license_patterns = [path("", include("dashboard.urls"))]

urlpatterns = [
    path("healthz", HealthView.as_view(), name="healthz"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path(settings.ADMIN_URL, admin.site.urls),
    # Stripe's webhook: outside the license URLs (Stripe is not a login), signed instead.
    path("payments/", include("payments.webhook_urls")),
    path("l/<uuid:license_id>/", include(license_patterns)),
    # The customer API for programs (bearer API keys, no session): api/v1/.
    path("api/v1/", include("api.urls")),
    # The provider's own systems (service tokens, no session): push and gate, provider/.
    path("", include("provider.urls")),
    path("", include("accounts.urls")),
]
