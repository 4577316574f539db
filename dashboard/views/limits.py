"""Spend limits: what the gate lets this license spend (floor, monthly cap), what it holds
for calls in flight now, and what is still available. Everyone on the license reads the
page; owners change the limits (audited; the gate applies them from its next answer)."""

from functools import cached_property
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.generic import FormView

from accounts.mixins import LicenseMixin
from billing.limits.figures import CreditFigures
from billing.limits.selectors import spend_limits_get
from billing.limits.services import spend_limit_set
from billing.money import ZERO
from dashboard.forms import SpendLimitsForm
from portal.exceptions import ApplicationError

# The service's field names on this form.
_FIELDS = {"floor": "overdraft", "monthly_cap": "monthly_cap"}


class SpendLimitsView(LicenseMixin, FormView):
    template_name = "dashboard/spend_limits.html"
    form_class = SpendLimitsForm
    extra_context = {"nav_current": "limits"}

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if self.role != "owner":
            return render(
                request, "accounts/owner_only.html", {"license": self.license}, status=403
            )
        return super().post(request, *args, **kwargs)

    def get_initial(self) -> dict[str, Any]:
        figures = self.figures
        return {"overdraft": -figures.floor, "monthly_cap": figures.monthly_cap}

    @cached_property
    def figures(self) -> CreditFigures:
        return spend_limits_get(license=self.license)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["figures"] = self.figures
        context["can_change"] = self.role == "owner"
        return context

    def form_valid(self, form: SpendLimitsForm) -> HttpResponse:
        try:
            spend_limit_set(
                acting_user=self.user,
                license=self.license,
                floor=-(form.cleaned_data["overdraft"] or ZERO),
                monthly_cap=form.cleaned_data["monthly_cap"],
            )
        except ApplicationError as exc:
            form.add_error(_FIELDS.get(exc.field or ""), exc.message)
            return self.form_invalid(form)
        messages.success(self.request, "Spend limits saved. The next authorization uses them.")
        return redirect("dashboard:spend_limits", license_id=self.license.public_id)
