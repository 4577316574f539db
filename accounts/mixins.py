"""The customer pages' access rule: the login behind a request, and the license it may see (404 otherwise)."""

from typing import TYPE_CHECKING, Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render
from django.utils import timezone

from accounts.models import License, User
from accounts.selectors import license_access_get

if TYPE_CHECKING:
    from django.views.generic import TemplateView as _ViewBase
else:
    _ViewBase = object


def request_login(request: HttpRequest) -> User:
    """The login behind a request on a page only logins reach (LoginRequiredMixin, the
    staff admin): anything else there is refused, never served as an anonymous visitor."""
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


class LicenseMixin(LoginRequiredMixin, _ViewBase):
    """Resolves `self.license` from the URL for every customer page.

    Anonymous visitors go to the login page; a license the login is not a member of is a
    404; a closed license gets a plain page saying so.
    """

    license: License
    user: User  # the login, once dispatch has resolved the license
    role: str
    domains: list[str]  # the license's hostnames, primary first
    other_licenses: list[License]
    owner_only = False

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not isinstance(request.user, User):
            return self.handle_no_permission()
        self.user = request.user
        access = license_access_get(user=request.user, public_id=kwargs["license_id"])
        self.license, self.role, self.other_licenses = access.license, access.role, access.others
        self.domains = access.domains
        # Every time the page shows is the license's (portal.middleware.RequestTimezoneMiddleware
        # returns to the site's timezone after the response is rendered).
        timezone.activate(self.license.tzinfo)
        if self.license.access_refusal() is not None:  # closed (the API refuses it too)
            return render(
                request, "accounts/license_closed.html", {"license": self.license}, status=403
            )
        if self.owner_only and self.role != "owner":
            return render(
                request, "accounts/owner_only.html", {"license": self.license}, status=403
            )
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["license"] = self.license
        context["role"] = self.role
        # The license switcher (dashboard nav) for logins with several licenses, read with
        # the license and the role (one query for all three).
        context["other_licenses"] = self.other_licenses
        return context
