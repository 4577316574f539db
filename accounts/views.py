from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.views.generic import FormView, TemplateView

from accounts.forms import EmailAuthenticationForm, LicenseAlertSettingsForm
from accounts.mixins import LicenseMixin
from accounts.models import AlertRecipient, Membership
from accounts.selectors import licenses_for_user
from accounts.services import license_alert_settings_update


class HomeView(LoginRequiredMixin, TemplateView):
    """One license: straight to its dashboard. Several: the license switcher."""

    template_name = "accounts/license_list.html"

    def get(self, request, *args, **kwargs):
        licenses = list(licenses_for_user(request.user))
        if len(licenses) == 1:
            return redirect("usage:dashboard", license_id=licenses[0].public_id)
        return self.render_to_response(self.get_context_data(licenses=licenses))


class LicenseListView(LoginRequiredMixin, TemplateView):
    template_name = "accounts/license_list.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(licenses=licenses_for_user(self.request.user), **kwargs)


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


class LicenseSettingsView(LicenseMixin, FormView):
    """An owner sets the low-balance threshold and who gets the alerts."""

    template_name = "accounts/license_settings.html"
    form_class = LicenseAlertSettingsForm
    owner_only = True
    extra_context = {"nav_current": "settings"}

    def memberships(self):
        return list(
            Membership.objects.for_license(self.license)
            .select_related("user")
            .order_by("user__email")
        )

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "memberships": self.memberships()}

    def get_initial(self):
        return {
            "low_balance_threshold": self.license.low_balance_threshold,
            "alert_members": [str(m.pk) for m in self.memberships() if m.receives_alerts],
            "extra_emails": "\n".join(
                AlertRecipient.objects.for_license(self.license)
                .order_by("email")
                .values_list("email", flat=True)
            ),
        }

    def form_valid(self, form):
        try:
            license_alert_settings_update(
                acting_user=self.request.user,
                license=self.license,
                threshold=form.cleaned_data["low_balance_threshold"],
                alert_membership_ids=[int(pk) for pk in form.cleaned_data["alert_members"]],
                extra_emails=form.cleaned_data["extra_emails"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            return self.form_invalid(form)
        messages.success(self.request, "Alert settings saved.")
        return redirect("accounts:license_settings", license_id=self.license.public_id)
