"""Spend limits in the console: every license's limits listed read-only, and one page per
license (linked from the console's license page) where the billing team
(`billing.approve_overdraft`) approves how far below zero the gate may let it spend, and
sets its floor and monthly cap, with a reason (billing.limits.services, audited)."""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.models import License, User
from billing.limits.selectors import spend_limits_get
from billing.limits.services import can_approve_overdraft, spend_limit_set
from billing.models import SpendLimit
from billing.money import MONEY_MAX, MONEY_PLACES, ZERO
from portal.admin import ReadOnlyAdminMixin
from portal.amounts import AmountField
from portal.exceptions import ApplicationError


def _money(**kwargs: Any) -> AmountField:
    return AmountField(max_value=MONEY_MAX, places=MONEY_PLACES, **kwargs)


class StaffSpendLimitsForm(forms.Form):
    overdraft_approved = _money(
        label="Approved below zero, up to",
        allow_zero=True,
        min_value=Decimal("0"),
        help_text="How far below $0.00 the owners may let the gate allow spending (0: none).",
    )
    overdraft = _money(
        label="Floor: allow spending below zero by",
        allow_zero=True,
        min_value=Decimal("0"),
        help_text="The floor in force now, at most the approval (0 stops at $0.00).",
    )
    monthly_cap = _money(label="Monthly cap", required=False, help_text="Empty: no cap.")
    reason = forms.CharField(max_length=500, help_text="Kept in the audit trail.")


_FIELDS = {"floor": "overdraft"}


@admin.register(SpendLimit)
class SpendLimitAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["license", "floor", "overdraft_approved", "monthly_cap", "updated_at"]
    list_select_related = ["license"]
    search_fields = ["=license__key", "license__name"]
    ordering = ["license__name"]

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "license/<int:license_id>/",
                wrap(self.license_view),
                name="billing_spendlimit_license",
            ),
            *super().get_urls(),
        ]

    def license_view(self, request: HttpRequest, license_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        license = get_object_or_404(License, pk=license_id)
        figures = spend_limits_get(license=license)
        may_change = isinstance(request.user, User) and can_approve_overdraft(request.user)
        if request.method == "POST":
            if not may_change or not isinstance(request.user, User):
                raise PermissionDenied
            form = StaffSpendLimitsForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    spend_limit_set(
                        acting_user=request.user,
                        license=license,
                        overdraft_approved=data["overdraft_approved"],
                        floor=-(data["overdraft"] or ZERO),
                        monthly_cap=data["monthly_cap"],
                        reason=data["reason"],
                    )
                except ApplicationError as exc:
                    form.add_error(_FIELDS.get(exc.field or "", exc.field), exc.message)
                else:
                    messages.success(request, f"Spend limits of {license.name} saved.")
                    return redirect(reverse("admin:accounts_license_change", args=[license.pk]))
        else:
            form = StaffSpendLimitsForm(
                initial={
                    "overdraft_approved": figures.overdraft_approved,
                    "overdraft": -figures.floor,
                    "monthly_cap": figures.monthly_cap,
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Spend limits of {license.name}",
            "license": license,
            "figures": figures,
            "form": form,
            "may_change": may_change,
        }
        return TemplateResponse(request, "admin/billing/spend_limits.html", context)
