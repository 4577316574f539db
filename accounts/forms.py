from decimal import Decimal

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from portal.text import VisibleTextFormMixin


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match a login. Both are checked as typed.",
    }

    def clean_username(self):
        return self.cleaned_data["username"].strip().lower()


MAX_EXTRA_RECIPIENTS = 10


class LicenseAlertSettingsForm(VisibleTextFormMixin, forms.Form):
    low_balance_threshold = forms.DecimalField(
        label="Low-balance threshold ($)",
        min_value=Decimal("0"),
        max_digits=18,
        decimal_places=6,
        help_text="The balance shows red and alerts go out below this amount. Default $1.00.",
    )
    alert_members = forms.MultipleChoiceField(
        label="Logins who get alerts",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    extra_emails = forms.CharField(
        label="Extra addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=f"One email address per line, at most {MAX_EXTRA_RECIPIENTS}.",
    )

    def __init__(self, *args, memberships, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["alert_members"].choices = [(str(m.pk), m.user.email) for m in memberships]

    def clean_extra_emails(self):
        lines = [line.strip() for line in self.cleaned_data["extra_emails"].splitlines()]
        emails: list[str] = []
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                validate_email(line)
            except ValidationError as exc:
                raise ValidationError(
                    f"line {number} ('{line[:80]}') is not an email address."
                ) from exc
            if line.lower() not in emails:
                emails.append(line.lower())
        if len(emails) > MAX_EXTRA_RECIPIENTS:
            raise ValidationError(f"At most {MAX_EXTRA_RECIPIENTS} extra addresses.")
        return emails


def login_username(request, credentials) -> str:
    """The account django-axes counts failures against: the email as it is stored."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    return username.strip().lower()
