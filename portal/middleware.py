"""Per-request middleware: sessions that end after a person's idle time (renewed only by a
person's requests), private pages never cached, each request's timezone its own."""

import time

from django.conf import settings
from django.utils import timezone

# The session key holding when a person's request last pushed the expiry out (epoch seconds).
RENEWED_AT = "_renewed_at"


class SessionActivityMiddleware:
    """Makes SESSION_COOKIE_AGE an idle timeout that only a person's requests extend.

    A person's request re-saves the session (pushing its expiry out) when the last renewal
    is SESSION_RENEW_SECONDS old or more, so a session is written at most once a minute
    rather than on every page (each save is a write transaction and a commit: on a busy
    dashboard, the largest part of its database time); the idle timeout is that much
    shorter at worst. The dashboard's background auto-refresh, marked with X-Auto-Refresh,
    never renews, so a tab left open still logs out after the idle time. Listed after
    SessionMiddleware, so it marks the session before SessionMiddleware decides whether to
    save it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if (
            session is not None
            and not session.is_empty()
            and request.headers.get("X-Auto-Refresh") != "1"
            and response.status_code != 500
        ):
            now = int(time.time())
            if now - session.get(RENEWED_AT, 0) >= settings.SESSION_RENEW_SECONDS:
                session[RENEWED_AT] = now  # modified: saved, with a new expiry
        return response


class PrivatePagesNoStoreMiddleware:
    """Pages answered to a logged-in person (and downloads), and the API's answers to a
    program's key (an Authorization header), are never stored by the browser or a shared
    cache: balances must not stay readable in a cache after logout."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        private = (user is not None and user.is_authenticated) or bool(
            request.META.get("HTTP_AUTHORIZATION")
        )
        if private and not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response


class RequestTimezoneMiddleware:
    """Each request starts and ends in the site's timezone (TIME_ZONE): a customer page
    activates its license's timezone once it knows the license (accounts.mixins.LicenseMixin),
    so every time the page renders, |date included, is the license's, and it must not
    outlive the request in a thread that serves the next one. Wraps the rendering of
    TemplateResponses, which happens after the view returns."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
