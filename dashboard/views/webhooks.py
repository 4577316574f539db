"""Webhook endpoints of a license (beside its API keys): everyone sees the endpoints and
their delivery logs; owners register, switch off and on, delete, rotate the signing secret
and resend. The work is api.services'; a secret is on the page once, when it is made."""

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View
from django.views.generic import TemplateView

from accounts.mixins import LicenseMixin
from api.models import WebhookEndpoint
from api.selectors import (
    webhook_deliveries_recent,
    webhook_delivery_get,
    webhook_endpoint_get,
    webhook_endpoints_for_license,
)
from api.services import (
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_set_active,
)
from dashboard.forms import WebhookEndpointForm
from portal.exceptions import ApplicationError


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # a signing secret is on this page, once
    return response


class WebhookListView(LicenseMixin, TemplateView):
    """The license's endpoints; an owner registers one here (its secret shown once)."""

    template_name = "dashboard/webhooks.html"
    extra_context = {"nav_current": "webhooks"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["endpoints"] = list(webhook_endpoints_for_license(self.license))
        context.setdefault("form", WebhookEndpointForm())
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if self.role != "owner":
            return self._owner_only()
        form = WebhookEndpointForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        try:
            endpoint, secret = webhook_endpoint_create(
                acting_user=self.user,
                license=self.license,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return self.render_to_response(self.get_context_data(form=form), status=400)
        return _no_store(
            self.render_to_response(self.get_context_data(new_endpoint=endpoint, secret=secret))
        )

    def _owner_only(self) -> HttpResponse:
        return render(
            self.request, "accounts/owner_only.html", {"license": self.license}, status=403
        )


class _EndpointMixin(LicenseMixin):
    """The endpoint named in the URL, if it is this license's (another's is a 404)."""

    endpoint: WebhookEndpoint

    def get_endpoint(self) -> WebhookEndpoint:
        endpoint = webhook_endpoint_get(self.license, self.kwargs["endpoint_id"])
        if endpoint is None:
            raise Http404("No such webhook endpoint.")
        return endpoint

    def back(self) -> HttpResponse:
        return redirect(
            "dashboard:webhook",
            license_id=self.license.public_id,
            endpoint_id=self.kwargs["endpoint_id"],
        )


class WebhookDetailView(_EndpointMixin, TemplateView):
    """An endpoint and its delivery log (the newest deliveries)."""

    template_name = "dashboard/webhook.html"
    extra_context = {"nav_current": "webhooks"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        endpoint = kwargs.get("endpoint") or self.get_endpoint()
        context.update(
            endpoint=endpoint, deliveries=webhook_deliveries_recent(self.license, endpoint)
        )
        return context


class WebhookSetActiveView(_EndpointMixin, View):
    owner_only = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        endpoint = self.get_endpoint()
        active = request.POST.get("active") == "1"
        webhook_endpoint_set_active(acting_user=self.user, endpoint=endpoint, active=active)
        messages.success(
            request,
            f"Webhooks to {endpoint.url} are {'on again' if active else 'switched off'}.",
        )
        return self.back()


class WebhookSecretRotateView(WebhookDetailView):
    """A new signing secret, shown on the endpoint's page this once."""

    owner_only = True

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.back()

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        endpoint, secret = webhook_endpoint_secret_rotate(
            acting_user=self.user, endpoint=self.get_endpoint()
        )
        context = self.get_context_data(endpoint=endpoint, secret=secret)
        return _no_store(self.render_to_response(context))


class WebhookDeleteView(_EndpointMixin, View):
    owner_only = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        endpoint = self.get_endpoint()
        webhook_endpoint_delete(acting_user=self.user, endpoint=endpoint)
        messages.success(request, f"Webhook endpoint {endpoint.url} deleted.")
        return redirect("dashboard:webhooks", license_id=self.license.public_id)


class WebhookDeliveryResendView(_EndpointMixin, View):
    """Send a delivery again: the same event, the same event id (receivers skip repeats)."""

    owner_only = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        endpoint = self.get_endpoint()
        delivery = webhook_delivery_get(self.license, endpoint, kwargs["delivery_id"])
        if delivery is None:
            raise Http404("No such delivery.")
        try:
            webhook_delivery_resend(acting_user=self.user, delivery=delivery)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, f"Event {delivery.event.public_id} is being sent again to {endpoint.url}."
            )
        return self.back()
