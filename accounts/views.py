"""Login, logout, password reset and the license list: the pages before a license is chosen."""

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.generic import TemplateView

from accounts.forms import EmailAuthenticationForm
from accounts.mixins import request_login
from accounts.password_reset import password_reset_wait_message
from accounts.selectors import licenses_for_user
from accounts.signals import license_summaries
from accounts.tasks import password_reset_send_task
from portal.http import client_ip
from portal.ratelimit import duration_text
from portal.tasks import task_enqueue


class HomeView(LoginRequiredMixin, TemplateView):
    """One license: straight to its dashboard. Several: the license switcher. Staff who
    belong to no license: the admin's operations overview."""

    template_name = "accounts/license_list.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        login = request_login(request)
        licenses = list(licenses_for_user(login))
        if not licenses and login.is_staff:
            return redirect("admin:index")
        if len(licenses) == 1:
            return redirect(licenses[0].get_absolute_url())
        return self.render_to_response(self.get_context_data(rows=_license_rows(licenses)))


class LicenseListView(LoginRequiredMixin, TemplateView):
    template_name = "accounts/license_list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        rows = _license_rows(list(licenses_for_user(request_login(self.request))))
        return super().get_context_data(rows=rows, **kwargs)


def _license_rows(licenses: list) -> list[tuple]:
    """(license, its summary or None): balance and low-balance state from the apps above."""
    summaries = license_summaries(licenses)
    return [(license, summaries.get(license.pk)) for license in licenses]


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if getattr(form, "throttled", False):  # too many failures: the page says for how long
            response.status_code = 429
        return response


def login_locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """django-axes' lockout (one account from one address): the page says for how long."""
    cooloff = int(settings.AXES_COOLOFF_TIME.total_seconds())
    return render(request, "accounts/locked_out.html", {"wait": duration_text(cooloff)}, status=429)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"


class PasswordResetView(auth_views.PasswordResetView):
    """Counts the request per address and per email, then hands the email to a worker
    (accounts.password_reset): the same answer, and the same work, whether or not a login
    has that email; never a link built from this request's Host."""

    template_name = "accounts/password_reset.html"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        email = form.cleaned_data["email"]
        wait = password_reset_wait_message(email=email, address=client_ip(self.request))
        if wait:
            form.add_error(None, wait)
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        if not task_enqueue(password_reset_send_task, args=[email], what="password reset"):
            # Logged by task_enqueue. The page stays the same (it must not say whether the
            # login exists); it already tells the person to ask again if nothing arrives.
            pass
        return redirect(self.get_success_url())


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
