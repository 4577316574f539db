"""The provider's endpoints (service tokens): usage pushed in, and the gate."""

from django.urls import path

from provider.views import GateAuthorizeView, UsagePushView

app_name = "provider"

urlpatterns = [
    path("ingest/v1/usage", UsagePushView.as_view(), name="usage_push"),
    path("gate/v1/authorize", GateAuthorizeView.as_view(), name="gate_authorize"),
]
