"""Credit approvals (four eyes): the queue of goodwill credits and hand-recorded purchases
above the limit, waiting first. A Billing member other than the requester approves (the
credit is posted, once) or rejects with a reason; Support and the requester only read."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse

from accounts.mixins import request_login
from accounts.models import User
from billing.admin.money import can_issue_refunds, can_record_purchases
from billing.credits.approvals import credit_approval_approve, credit_approval_reject
from billing.models import CreditApproval
from billing.money import format_money
from portal.admin import ReadOnlyAdminMixin
from portal.exceptions import ApplicationError
from portal.text import VisibleTextFormMixin


class RejectionForm(VisibleTextFormMixin, forms.Form):
    reason = forms.CharField(
        label="Why reject",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="Why the credit is not given; the requester reads it here.",
    )


def may_post(user: Any, approval: CreditApproval) -> bool:
    """The permission that posting this kind of credit needs (billing.admin.money's)."""
    if approval.kind == CreditApproval.Kind.PURCHASE:
        return can_record_purchases(user)
    return can_issue_refunds(user)


def may_decide(user: Any, approval: CreditApproval) -> bool:
    """A Billing member who may post this kind of credit, and not the one who asked."""
    return (
        approval.status == CreditApproval.Status.PENDING
        and may_post(user, approval)
        and user.pk != approval.requested_by_id
    )


@admin.register(CreditApproval)
class CreditApprovalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "requested_at",
        "license",
        "kind",
        "amount_shown",
        "requested_by",
        "decided_by",
        "entry",
    )
    list_filter = ("status", "kind")
    list_select_related = ("license", "requested_by", "decided_by", "entry")
    search_fields = ("license__key", "license__name", "external_id")
    # Waiting first, then the newest.
    ordering = (
        Case(When(status=CreditApproval.Status.PENDING, then=0), default=1).asc(),
        "-requested_at",
    )
    # The key (what makes a double submit one request) is plumbing: not shown.
    fields = (
        "license", "kind", "amount_shown", "reason", "external_id", "description", "status",
        "requested_by", "requested_at", "decided_by", "decided_at", "rejection_reason", "entry",
    )  # fmt: skip
    readonly_fields = fields
    change_form_template = "admin/billing/creditapproval/change_form.html"

    @admin.display(description="amount", ordering="amount")
    def amount_shown(self, approval: CreditApproval) -> str:
        return format_money(approval.amount)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/approve/", wrap(self.approve_view), name="billing_creditapproval_approve"
            ),
            path("<int:pk>/reject/", wrap(self.reject_view), name="billing_creditapproval_reject"),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        approval = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if approval is not None:
            extra["can_decide"] = may_decide(request.user, approval)
            extra["own_request"] = approval.requested_by_id == request.user.pk
            extra["rejection_form"] = RejectionForm()
        return super().change_view(request, object_id, form_url, extra)

    def _decision(self, request: HttpRequest, pk: int) -> tuple[CreditApproval, User]:
        approval = get_object_or_404(CreditApproval, pk=pk)
        if request.method != "POST" or not may_post(request.user, approval):
            raise PermissionDenied
        return approval, request_login(request)

    def approve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        approval, user = self._decision(request, pk)
        back = reverse("admin:billing_creditapproval_change", args=[approval.pk])
        try:
            result = credit_approval_approve(acting_user=user, approval_id=approval.pk)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect(back)
        done = result.approval
        if result.created:
            messages.success(
                request,
                f"Approved: {format_money(done.amount)} credited as entry #{done.entry_id}.",
            )
        else:
            messages.info(
                request,
                f"Already approved by {done.decided_by}: entry #{done.entry_id}; "
                "nothing was added.",
            )
        return redirect(back)

    def reject_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        approval, user = self._decision(request, pk)
        back = reverse("admin:billing_creditapproval_change", args=[approval.pk])
        form = RejectionForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Reason: say why the credit is rejected.")
            return redirect(back)
        try:
            credit_approval_reject(
                acting_user=user, approval_id=approval.pk, reason=form.cleaned_data["reason"]
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.warning(request, f"Request #{approval.pk} rejected; nothing was credited.")
        return redirect(back)
