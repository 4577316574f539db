"""Service tokens in the staff admin: a read-only list (name, prefix, made, last used,
state; never a secret or its hash) and the "Revoke" action, for staff allowed to revoke
(`provider.revoke_servicetoken`: superusers). Tokens are made with
`manage.py service_token_create`, which prints the secret once."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.mixins import request_login
from portal.admin import ReadOnlyAdminMixin
from provider.models import ServiceToken
from provider.services import service_token_revoke


@admin.register(ServiceToken)
class ServiceTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "display", "state", "created_at", "created_by", "last_used_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix")
    fields = ("name", "display", "state", "created_at", "created_by", "last_used_at", "revoked_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    actions = ["revoke"]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("provider.revoke_servicetoken")

    @admin.action(description="Revoke selected service tokens", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ServiceToken]) -> None:
        actor = request_login(request)
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            service_token_revoke(acting_user=actor, token=token, reason="revoked in the admin")
            revoked += 1
        self.message_user(request, f"{revoked} service token(s) revoked.", messages.SUCCESS)
