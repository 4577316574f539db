"""The staff admin of accounts: logins, licenses with their domains and memberships, the audit trail, and login lockouts."""

from decimal import Decimal

from axes import admin as axes_admin
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.domains import normalize_domain
from accounts.models import AuditEvent, Domain, License, Membership, User
from accounts.selectors import license_search
from accounts.services import (
    domain_delete,
    domain_save,
    license_save,
    membership_delete,
    membership_save,
)
from portal.admin import ReadOnlyAdminMixin
from portal.amounts import DECIMAL_FIELD_MESSAGES, AmountField
from portal.text import VisibleTextFormMixin


class DomainForm(VisibleTextFormMixin, forms.ModelForm):
    class Meta:
        model = Domain
        fields = ["hostname", "is_primary"]

    def clean_hostname(self):
        try:
            return normalize_domain(self.cleaned_data["hostname"])
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc


class DomainInline(admin.TabularInline):
    model = Domain
    form = DomainForm
    extra = 0


class MembershipInline(admin.TabularInline):
    """Add a login to a license by email: the autocomplete offers customer logins only
    (UserAdmin.get_search_results), to staff who may change memberships."""

    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class AuditedInlinesMixin:
    """Routes inline saves and deletes through the audited services."""

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            if isinstance(obj, Domain):
                domain_delete(acting_user=request.user, domain=obj)
            elif isinstance(obj, Membership):
                membership_delete(acting_user=request.user, membership=obj)
        for obj in instances:
            if isinstance(obj, Domain):
                domain_save(acting_user=request.user, domain=obj)
            elif isinstance(obj, Membership):
                membership_save(acting_user=request.user, membership=obj)
        formset.save_m2m()


_THRESHOLD = License._meta.get_field("low_balance_threshold")


class LicenseForm(VisibleTextFormMixin, forms.ModelForm):
    # The one parser of typed amounts (portal.amounts): "0,50" is refused, never read as 50.
    low_balance_threshold = AmountField(
        places=_THRESHOLD.decimal_places,
        max_value=Decimal(10) ** (_THRESHOLD.max_digits - _THRESHOLD.decimal_places) - 1,
        min_value=Decimal("0"),
        allow_zero=True,
        messages=DECIMAL_FIELD_MESSAGES,
        initial=_THRESHOLD.default,
        help_text=_THRESHOLD.help_text,
    )

    class Meta:
        model = License
        fields = [
            "name", "key", "license_type", "status", "contact_email",
            "member_since", "timezone", "low_balance_threshold",
        ]  # fmt: skip


@admin.register(License)
class LicenseAdmin(AuditedInlinesMixin, admin.ModelAdmin):
    form = LicenseForm
    list_display = ["name", "key", "license_type", "status", "contact_email", "member_since"]
    list_filter = ["license_type", "status"]
    # Searched by license_search (get_search_results): listed so the admin shows the box.
    search_fields = ["key", "name", "contact_email"]
    search_help_text = (
        "A license key or part of one, a name, a contact email, a domain or a member's email."
    )
    readonly_fields = ["public_id", "created_at", "updated_at"]
    inlines = [DomainInline, MembershipInline]
    fieldsets = [
        (None, {"fields": ["name", "key", "license_type", "status", "contact_email"]}),
        ("Customer settings", {"fields": ["member_since", "timezone", "low_balance_threshold"]}),
        ("Record", {"fields": ["public_id", "created_at", "updated_at"]}),
    ]

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(pk__in=license_search(search_term).values("pk")), False

    def save_model(self, request, obj, form, change):
        tz_changed = change and "timezone" in form.changed_data
        license_save(acting_user=request.user, license=obj)
        if tz_changed:
            messages.info(request, f"Daily figures of {obj.name} were rebuilt for {obj.timezone}.")

    def delete_model(self, request, obj):
        raise ValidationError("Licenses are closed, not deleted.")

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["hostname", "license", "is_primary"]
    list_select_related = ["license"]
    search_fields = ["hostname", "license__name", "license__key"]
    list_filter = ["is_primary"]
    raw_id_fields = ["license"]

    def save_model(self, request, obj, form, change):
        domain_save(acting_user=request.user, domain=obj)

    def delete_model(self, request, obj):
        domain_delete(acting_user=request.user, domain=obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            domain_delete(acting_user=request.user, domain=obj)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "license", "role"]
    list_select_related = ["user", "license"]
    list_filter = ["role"]
    search_fields = ["user__email", "license__name", "license__key"]
    raw_id_fields = ["user", "license"]

    def save_model(self, request, obj, form, change):
        membership_save(acting_user=request.user, membership=obj)

    def delete_model(self, request, obj):
        membership_delete(acting_user=request.user, membership=obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            membership_delete(acting_user=request.user, membership=obj)


class UserCreationForm(VisibleTextFormMixin, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ["email"]


class UserEditForm(VisibleTextFormMixin, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class UserMembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["license"]


@admin.register(User)
class UserAdmin(AuditedInlinesMixin, BaseUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["full_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]}),
    ]
    filter_horizontal = ["groups"]
    inlines = [UserMembershipInline]

    def get_search_results(self, request, queryset, search_term):
        """The membership autocomplete (adding a login to a license) offers customer logins
        only, and only to staff who may add memberships; other searches are Django's."""
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if (
            request.GET.get("model_name") == "membership"
            and request.GET.get("field_name") == "user"
        ):
            if not request.user.has_perm("accounts.add_membership"):
                return queryset.none(), False
            queryset = queryset.filter(is_staff=False, is_active=True)
        return queryset, may_have_duplicates


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "license", "target", "reason"]
    list_select_related = ["actor", "license"]
    list_filter = ["action"]
    search_fields = ["action", "target", "reason", "actor__email", "license__name", "license__key"]
    date_hierarchy = "created_at"


# --- login lockouts (django-axes' admin, one action fixed and gated) ----------------------


class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    """django-axes' list of lockouts. Its "Clean up expired attempts" deletes rows, so it
    needs the delete permission (superusers; Support only views), and it is given the
    moment it measures expiry from: axes sets `axes_attempt_time` only on login requests,
    so on the admin's request its own action failed with a 500."""

    actions = ["cleanup_expired_attempts"]

    @admin.action(description="Clean up expired attempts", permissions=["delete"])
    def cleanup_expired_attempts(self, request, queryset):
        request.axes_attempt_time = timezone.now()
        count = self.handler.clean_expired_user_attempts(request=request)
        self.message_user(request, f"Cleaned up {count} expired access attempts.")


if admin.site.is_registered(AccessAttempt):  # AXES_ENABLE_ADMIN (the default)
    admin.site.unregister(AccessAttempt)
    admin.site.register(AccessAttempt, AccessAttemptAdmin)
