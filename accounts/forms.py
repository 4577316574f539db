"""Login forms: the customer's email login and the staff admin's login with its second factor, both counted against guessing."""

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.login_throttle import login_failed, login_succeeded, login_wait_message
from portal.http import client_ip


class LoginThrottleMixin:
    """Progressive delays per account and per address before the password is even checked
    (accounts/login_throttle.py); every refused login (wrong password, wrong code) counts."""

    request: HttpRequest | None
    data: Any
    throttled = False

    def clean(self) -> dict[str, Any]:
        cleaned_data: dict[str, Any] = self.cleaned_data  # type: ignore[attr-defined]
        if not cleaned_data.get("username"):
            return super().clean()  # type: ignore[misc]  # no valid email: nothing is checked
        account = cleaned_data["username"].strip().lower()
        address = _address(self.request)
        wait = login_wait_message(account=account, address=address)
        if wait:
            self.throttled = True
            raise ValidationError(wait, code="throttled")
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except ValidationError:
            login_failed(account=account, address=address)
            raise
        login_succeeded(account=account)
        return cleaned


def _address(request: HttpRequest | None) -> str:
    return client_ip(request) if request is not None else ""


class EmailAuthenticationForm(LoginThrottleMixin, AuthenticationForm):
    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match a login. Both are checked as typed.",
    }

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


class StaffLoginForm(LoginThrottleMixin, OTPAdminAuthenticationForm):
    """The admin's login: email, password and the code of the staff member's authenticator
    app (TOTP) or one of their recovery codes (django-otp)."""

    otp_token = forms.CharField(
        required=False,
        label="Authenticator code",
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="The 6 digits your authenticator app shows, or one of your recovery codes.",
    )
    otp_error_messages = {
        **OTPAdminAuthenticationForm.otp_error_messages,
        "token_required": "Enter the code from your authenticator app (or a recovery code).",
        "invalid_token": "That code is not right (or was already used). Codes change every "
        "30 seconds; check your device's clock.",
        "device_required": "This staff login has no authenticator yet: an administrator "
        "enrols one with manage.py staff_otp_enrol.",
    }

    def _chosen_device(self, user: Any) -> Any:
        """Six digits are the authenticator's code; anything else is a recovery code. So
        the person types a code and never picks a device, and a guess only counts against
        the device it was meant for."""
        device = super()._chosen_device(user)
        if device is None:
            token = (self.cleaned_data.get("otp_token") or "").strip()
            model = TOTPDevice if token.isdigit() and len(token) == 6 else StaticDevice
            device = model.objects.filter(user=user, confirmed=True).first()
        return device

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


def login_username(request: HttpRequest | None, credentials: Any) -> str:
    """The account django-axes counts failures against: the email as it is stored."""
    username = (credentials or {}).get("username")
    if not username and request is not None:
        username = request.POST.get("username", "")
    return (username or "").strip().lower()
