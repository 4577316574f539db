"""Balances, daily rollups and low-balance alerts in the admin: read-only, derived data."""

from django.contrib import admin

from billing.admin.ledger import CappedCountPaginator
from billing.ledger.totals import TOTAL_NAMES
from billing.models import BalanceAlert, DailyRollup, LicenseBalance
from billing.money import format_money
from portal.admin import ReadOnlyAdminMixin


@admin.register(LicenseBalance)
class LicenseBalanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Every total of billing.ledger.totals, the balance formatted as money.
    list_display = [
        "license",
        "balance_display",
        *(name for name in TOTAL_NAMES if name != "balance"),
        "updated_at",
    ]
    list_select_related = ["license"]
    search_fields = ["=license__key", "license__name"]
    ordering = ["license__name"]
    show_full_result_count = False

    @admin.display(description="balance", ordering="balance")
    def balance_display(self, obj):
        return format_money(obj.balance)


@admin.register(DailyRollup)
class DailyRollupAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "day",
        "license",
        "kind",
        "service",
        "amount",
        "tokens",
        "images",
        "api_calls",
        "entries",
    ]
    list_select_related = ["license"]
    list_filter = ["kind", "service", ("license", admin.RelatedFieldListFilter)]
    search_fields = ["=license__key", "license__name"]
    # Newest first by id: served by the primary key, not a sort of the whole table.
    ordering = ["-id"]
    show_full_result_count = False
    paginator = CappedCountPaginator


@admin.register(BalanceAlert)
class BalanceAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Low-balance emails: which line was crossed, when, to whom, and whether it went out."""

    list_display = ["crossed_at", "license", "kind", "balance", "threshold", "sent_at", "attempts"]
    list_select_related = ["license"]
    list_filter = ["kind", ("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["=license__key", "license__name"]
    ordering = ["-id"]
    readonly_fields = [
        "license", "kind", "balance", "threshold", "crossed_at", "recipients", "sent_at",
        "attempts", "last_error",
    ]  # fmt: skip
