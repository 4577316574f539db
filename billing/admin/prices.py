"""Prices in the admin: add-only."""

from django.contrib import admin
from django.utils import timezone

from billing.forms import PriceForm
from billing.models import Price
from billing.money import PER_MILLION, PER_TEN_THOUSAND, format_money
from billing.prices.services import price_add


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    """Add-only: a price change is a new row from a moment on. The database refuses any
    edit, and the deletion of a price in effect, so the admin offers neither."""

    form = PriceForm
    list_display = [
        "service",
        "unit_price",
        "bulk_price",
        "effective_from",
        "in_effect",
        "created_by",
        "created_at",
    ]
    list_filter = ["service"]
    list_select_related = ["created_by"]
    ordering = ["service", "-effective_from"]
    readonly_fields = ["created_by", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["service", "unit_price", "effective_from"]
        return ["service", "unit_price", "effective_from", "created_by", "created_at"]

    @admin.display(description="bulk price")
    def bulk_price(self, obj):
        if obj.service == "ai_images":
            return f"{format_money(obj.unit_price * PER_TEN_THOUSAND, 2)} per 10,000 images"
        return f"{format_money(obj.unit_price * PER_MILLION, 3)} per 1M tokens"

    @admin.display(description="in effect since", boolean=True)
    def in_effect(self, obj):
        return obj.effective_from <= timezone.now()

    def save_model(self, request, obj, form, change):
        # The service validates, writes the row and the audit event in one transaction.
        # The form already checked the same rules, so a refusal here is a race (another
        # price for the same moment): the unique constraint keeps the data right.
        price = price_add(
            acting_user=request.user,
            service=form.cleaned_data["service"],
            unit_price=form.cleaned_data["unit_price"],
            effective_from=form.cleaned_data.get("effective_from"),
        )
        obj.pk = price.pk
        obj.effective_from = price.effective_from
        obj.created_by = price.created_by
        obj.created_at = price.created_at
