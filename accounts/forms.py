from django import forms
from django.contrib.auth.forms import AuthenticationForm


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


def login_username(request, credentials) -> str:
    """The account django-axes counts failures against: the email as it is stored."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    return username.strip().lower()
