"""API keys of the portal's customer API: the list, an owner's new key (its secret shown
once) and revoking one."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from accounts.mixins import LicenseMixin
from api.selectors import api_keys_for_license
from api.services import api_key_create, api_key_revoke
from dashboard.forms import ApiKeyForm
from portal.exceptions import ApplicationError


class ApiKeysView(LicenseMixin, TemplateView):
    """API keys: everyone sees the list; owners make keys (shown once) and revoke them."""

    template_name = "dashboard/api_keys.html"
    extra_context = {"nav_current": "api_keys"}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["keys"] = list(api_keys_for_license(self.license))
        context.setdefault("form", kwargs.get("form") or ApiKeyForm())
        context["reference_url"] = reverse("api_reference")
        context["portal_api_base_url"] = settings.PORTAL_API_BASE_URL.rstrip("/")
        return context

    def post(self, request, *args, **kwargs):
        if self.role != "owner":
            return render(
                request, "accounts/owner_only.html", {"license": self.license}, status=403
            )
        form = ApiKeyForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        try:
            key, raw = api_key_create(
                acting_user=self.user,
                license=self.license,
                name=form.cleaned_data["name"],
                expires_at=form.expires_at(self.license),
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return self.render_to_response(self.get_context_data(form=form), status=400)
        example = (
            f'curl -H "Authorization: Bearer {raw}" \\\n'
            f"     {settings.PORTAL_API_BASE_URL.rstrip('/')}/licenses/"
            f"{self.license.public_id}/balance"
        )
        response = self.render_to_response(
            self.get_context_data(new_key=key, new_secret=raw, new_example=example)
        )
        response["Cache-Control"] = "no-store"  # the secret is on this page, once
        return response


class ApiKeyRevokeView(LicenseMixin, View):
    owner_only = True

    def post(self, request, *args, **kwargs):
        key = get_object_or_404(api_keys_for_license(self.license), pk=kwargs["key_id"])
        api_key_revoke(acting_user=self.user, key=key)
        messages.success(request, f"API key {key.display} ({key.name}) revoked.")
        return redirect("dashboard:api_keys", license_id=self.license.public_id)
