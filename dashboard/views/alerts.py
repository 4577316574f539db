"""Alert Settings: an owner sets the low-balance threshold and who gets the alerts."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.generic import FormView

from accounts.mixins import LicenseMixin
from accounts.models import AlertRecipient, Membership
from billing.alerts.services import license_alert_settings_update
from dashboard.forms import LicenseAlertSettingsForm


class AlertSettingsView(LicenseMixin, FormView):
    """An owner sets the low-balance threshold and who gets the alerts."""

    template_name = "dashboard/alert_settings.html"
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
                acting_user=self.user,
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
        return redirect("dashboard:alert_settings", license_id=self.license.public_id)
