"""The staff admin of the sync: sync states (with Sync now) and quarantined records, read-only."""

import json

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.mixins import request_login
from accounts.models import License
from portal.admin import ReadOnlyAdminMixin
from usage.models import QuarantinedRecord, SyncState
from usage.selectors import sync_feed_get, sync_lagging_before
from usage.services.results import SyncOutcome, SyncResult
from usage.tasks import usage_sync_in_request

# "Sync now" runs in the admin's request for at most this long per license; a worker
# finishes the rest.
ADMIN_SYNC_BUDGET_SECONDS = 10.0


class ErrorFilter(admin.SimpleListFilter):
    title = "last run"
    parameter_name = "failing"

    def lookups(self, request, model_admin):
        return [("yes", "Failing"), ("no", "Healthy"), ("lagging", "Lagging")]

    def queryset(self, request, queryset):
        if self.value() == "lagging":
            return queryset.lagging(sync_lagging_before(), sync_feed_get().confirmed_at)
        if self.value() == "yes":
            return queryset.failing()
        if self.value() == "no":
            return queryset.healthy()
        return queryset


@admin.register(SyncState)
class SyncStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "license", "last_success_at", "last_attempt_at", "error_shown", "consecutive_failures",
        "records_charged", "records_duplicate", "records_quarantined",
    ]  # fmt: skip
    list_select_related = ["license"]
    list_filter = [ErrorFilter]
    search_fields = ["license__name", "license__key"]
    ordering = ["license__name"]
    actions = ["sync_now"]
    fields = (
        "license", "cursor", "last_success_at", "last_attempt_at", "last_error", "last_error_at",
        "last_manual_refresh_at", "records_charged", "records_duplicate", "records_quarantined",
        "created_at", "updated_at",
    )  # fmt: skip
    readonly_fields = fields

    @admin.display(description="last error")
    def error_shown(self, obj):
        return obj.last_error[:80] + ("…" if len(obj.last_error) > 80 else "") or "—"

    def has_sync_now_permission(self, request):
        return request.user.has_perm("usage.sync_now")

    @admin.action(description="Sync now", permissions=["sync_now"])
    def sync_now(self, request, queryset):
        for state in queryset.select_related("license"):
            text, level = sync_now_run(request, state.license)
            self.message_user(request, text, level)


def sync_now_run(request: HttpRequest, license: License) -> tuple[str, int]:
    """Staff's "Sync now" on one license (audited by usage_sync_now): run it in this request
    for at most ADMIN_SYNC_BUDGET_SECONDS, hand the rest to a worker, and say what happened
    (a message and its level). The caller checks the usage.sync_now permission."""
    user = request_login(request)
    result = usage_sync_in_request(
        license=license,
        trigger="admin",
        time_budget_seconds=ADMIN_SYNC_BUDGET_SECONDS,
        acting_user=user,
    )
    return sync_now_message(license, result)


def sync_now_message(license: License, result: SyncResult) -> tuple[str, int]:
    outcome, done = result.outcome, result.summary()
    if outcome is SyncOutcome.BUSY:
        return f"{license}: a sync is already running.", messages.INFO
    if outcome is SyncOutcome.FAILED:
        return f"{license}: {result.error} ({done})", messages.ERROR
    if outcome is SyncOutcome.PARTIAL and result.continued:
        return f"{license}: {done}; the rest continues in the background.", messages.INFO
    if outcome is SyncOutcome.PARTIAL:
        return (
            f"{license}: {done}; the broker (Redis) is not answering, so the rest "
            "cannot continue in the background now: run Sync now again.",
            messages.WARNING,
        )
    return f"{license}: up to date ({done}).", messages.SUCCESS


@admin.register(QuarantinedRecord)
class QuarantinedRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "license", "record_id_shown", "reason_code", "reason"]
    list_select_related = ["license"]
    list_filter = [("license", admin.RelatedOnlyFieldListFilter), "reason_code"]
    search_fields = ["record_id", "reason"]
    date_hierarchy = "received_at"
    ordering = ["-received_at", "-id"]
    fields = (
        "license",
        "record_id",
        "reason_code",
        "reason",
        "cursor",
        "received_at",
        "raw_shown",
        "fingerprint",
    )
    readonly_fields = fields

    @admin.display(description="record id")
    def record_id_shown(self, obj):
        return obj.record_id[:60] + ("…" if len(obj.record_id) > 60 else "") or "(none)"

    @admin.display(description="raw record")
    def raw_shown(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.raw, indent=2, sort_keys=True))
