"""Payments in the admin: read-only for everyone (money moves only through the services);
the events list shows what needs staff attention (intents the portal did not create,
another license's intent, changed amounts, disputes)."""

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse

from payments.models import Dispute, Payment, PaymentAccount, PaymentRefund, SavedCard, StripeEvent
from payments.stripe_client import payments_enabled
from portal.admin import ReadOnlyAdminMixin


class _SaysWhenOff:
    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not payments_enabled():
            messages.warning(
                request,
                "Card payments are off: STRIPE_SECRET_KEY is not set, so Purchase Credits "
                "shows customers how to buy from the billing team (docs/payments.md).",
            )
        return super().changelist_view(request, extra_context)  # type: ignore[misc]


@admin.register(Payment)
class PaymentAdmin(_SaysWhenOff, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "license",
        "amount",
        "status",
        "source",
        "intent_id",
        "ledger_entry",
        "receipt_number",
        "created_at",
    )
    list_filter = ("status", "source")
    search_fields = ("intent_id", "receipt_number", "license__key", "license__name")
    raw_id_fields = ("license", "ledger_entry", "created_by")
    date_hierarchy = "created_at"


@admin.register(StripeEvent)
class StripeEventAdmin(_SaysWhenOff, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "event_id",
        "type",
        "received_at",
        "processed_at",
        "needs_attention",
        "outcome",
        "license",
    )
    list_filter = ("needs_attention", "type")
    search_fields = ("event_id",)
    raw_id_fields = ("license",)


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "dispute_id",
        "license",
        "payment",
        "amount_cents",
        "reason",
        "status",
        "created_at",
        "closed_at",
    )
    list_filter = ("status",)
    raw_id_fields = ("license", "payment")


@admin.register(PaymentAccount)
class PaymentAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "license",
        "stripe_customer_id",
        "auto_topup_enabled",
        "auto_topup_threshold",
        "auto_topup_amount",
        "auto_topup_failures",
        "auto_topup_disabled_reason",
    )
    list_filter = ("auto_topup_enabled",)
    raw_id_fields = ("license",)


@admin.register(SavedCard)
class SavedCardAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "license",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "is_default",
        "removed_at",
    )
    raw_id_fields = ("license",)


@admin.register(PaymentRefund)
class PaymentRefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("payment", "license", "amount", "refund_id", "ledger_entry", "created_at")
    raw_id_fields = ("license", "payment", "ledger_entry")
