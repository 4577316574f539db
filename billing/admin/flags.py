"""The billing team's queue of flagged charges: open first, oldest first; each resolved with
a refund (the ordinary refund page, linked with the flag) or a written answer."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from accounts.mixins import request_login
from billing.admin.money import can_issue_refunds
from billing.flags.services import flag_resolve
from billing.history.transactions import transaction_detail_get
from billing.models import ChargeFlag
from portal.admin import ReadOnlyAdminMixin
from portal.exceptions import ApplicationError


class FlagAnswerForm(forms.Form):
    answer = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 70}),
        max_length=2000,
        help_text="Written for the customer: shown on their transaction and emailed to them.",
    )


@admin.register(ChargeFlag)
class ChargeFlagAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "status", "age", "license", "record_id", "created_by", "refund")
    list_filter = ("status",)
    list_select_related = ("license", "created_by", "refund")
    search_fields = ("record_id", "license__key", "license__name")
    ordering = ("-status", "created_at")  # "open" sorts after "resolved": open first
    raw_id_fields = ("entry", "refund")
    readonly_fields = [f.name for f in ChargeFlag._meta.fields]
    change_form_template = "admin/billing/chargeflag/change_form.html"

    @admin.display(description="age")
    def age(self, flag: ChargeFlag) -> str:
        end = flag.resolved_at or timezone.now()
        return timesince(flag.created_at, end)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/answer/",
                wrap(self.answer_view),
                name="billing_chargeflag_answer",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        flag = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if flag is not None:
            detail = transaction_detail_get(flag.license, flag.entry_id)
            extra["detail"] = detail
            extra["can_resolve"] = flag.status == ChargeFlag.Status.OPEN and can_issue_refunds(
                request.user
            )
            extra["answer_form"] = FlagAnswerForm()
            extra["refund_links"] = [
                (
                    c,
                    reverse("admin:billing_ledgerentry_refund", args=[c.entry_id])
                    + f"?flag={flag.pk}",
                )
                for c in (detail.charges if detail else [])
            ]
            if flag.refund_id:
                extra["refund_url"] = format_html(
                    '<a href="{}">#{}</a>',
                    reverse("admin:billing_ledgerentry_change", args=[flag.refund_id]),
                    flag.refund_id,
                )
        return super().change_view(request, object_id, form_url, extra)

    def answer_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST" or not can_issue_refunds(request.user):
            raise PermissionDenied
        flag = get_object_or_404(ChargeFlag, pk=pk)
        form = FlagAnswerForm(request.POST)
        back = reverse("admin:billing_chargeflag_change", args=[flag.pk])
        if not form.is_valid():
            messages.error(request, "Write the answer the customer will read.")
            return redirect(back)
        try:
            flag_resolve(
                acting_user=request_login(request), flag=flag, answer=form.cleaned_data["answer"]
            )
        except ApplicationError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Flag #{flag.pk} resolved; the customer is emailed.")
        return redirect(back)
