"""Rate limits for expensive customer actions (refresh, Test API, CSV download)."""

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect
from django.utils import timezone

_HIT_SQL = """
INSERT INTO portal_ratelimit (key, window_start, hits) VALUES (%(key)s, %(now)s, 1)
ON CONFLICT (key) DO UPDATE SET
    window_start = CASE WHEN portal_ratelimit.window_start <= %(expired)s
                        THEN %(now)s ELSE portal_ratelimit.window_start END,
    hits = CASE WHEN portal_ratelimit.window_start <= %(expired)s
                THEN 1 ELSE portal_ratelimit.hits + 1 END
RETURNING hits, window_start
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: int


def rate_limit_hit(*, key: str, limit: int, window_seconds: int) -> RateDecision:
    """Count one attempt under `key`; allowed while at most `limit` fall in the window."""
    now = timezone.now()
    window = timedelta(seconds=window_seconds)
    with connection.cursor() as cursor:
        cursor.execute(_HIT_SQL, {"key": key, "now": now, "expired": now - window})
        hits, window_start = cursor.fetchone()
    retry_after = max(1, math.ceil((window_start + window - now).total_seconds()))
    return RateDecision(hits <= limit, 0 if hits <= limit else retry_after)


def duration_text(seconds: int) -> str:
    """ "1 second", "45 seconds", "2 minutes" (rounded up: never promise too early)."""
    seconds = max(1, int(seconds))
    if seconds < 120:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


def per_window_text(limit: int, window_seconds: int) -> str:
    """ "10 a minute", "10 every 10 minutes", "1 every 30 seconds"."""
    if window_seconds == 60:
        return f"{limit} a minute"
    if window_seconds == 3600:
        return f"{limit} an hour"
    if window_seconds % 60 == 0:
        return f"{limit} every {window_seconds // 60} minutes"
    return f"{limit} every {duration_text(window_seconds)}"


def wait_message(*, reason: str, action: str, seconds: int) -> str:
    """The one shape of every "not now" answer (rate limits and Refresh Data's own gate):
    what happened, then what the customer can do and when."""
    return f"{reason} — you can {action} again in {duration_text(seconds)}."


if TYPE_CHECKING:
    from django.views import View as _ViewBase
else:
    _ViewBase = object


class LicenseRateLimitMixin(_ViewBase):
    """Limits the expensive handlers of a license-scoped view to `rate_limit` requests per
    `rate_window` seconds, per login and license (so one member cannot use up another's).
    Over the limit, the customer goes back to `rate_limited_redirect` (the license's home page
    by default) with a plain message saying what the limit is and when to try again.

    The limit is decided by the handler a request reaches, not by its method's name:
    `rate_limited_handlers` names the expensive ones, and any method routed to one of them
    (HEAD is routed to `get` by Django's View) is counted. A HEAD answered by an expensive
    `get` is given the GET's status and headers but never its body: a streamed body is closed
    unread, so HEAD never does the GET's work (a download's export is never built).

    `rate_limit` and `rate_window` may be properties reading settings, so the limits come
    from the environment and tests can change them.

    List it after LicenseMixin in the bases, so `self.license` is resolved (and a stranger got a 404) first.
    """

    rate_scope: str
    license: Any  # set by accounts.mixins.LicenseMixin, listed before this mixin
    rate_limited_handlers: tuple[str, ...] = ("get", "post")
    rate_limited_noun = "Requests"  # "Test requests are limited to 10 a minute"
    rate_limited_action = "do this"  # "you can do this again in 42 seconds"
    rate_limited_redirect: str | None = None  # a URL name taking license_id

    @property
    def rate_limit(self) -> int:
        raise NotImplementedError

    @property
    def rate_window(self) -> int:
        raise NotImplementedError

    def _handler_is_limited(self, request: HttpRequest) -> bool:
        method = (request.method or "").lower()
        if method not in self.http_method_names:
            return False
        handler = getattr(self, method, None)
        if handler is None:
            return False
        limited = [getattr(self, name, None) for name in self.rate_limited_handlers]
        return any(handler == other for other in limited if other is not None)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not hasattr(self, "license"):
            raise ImproperlyConfigured("list LicenseRateLimitMixin after LicenseMixin")
        if self._handler_is_limited(request):
            user_id = request.user.pk if request.user.is_authenticated else "anonymous"
            decision = rate_limit_hit(
                key=f"{self.rate_scope}:{self.license.pk}:{user_id}",
                limit=self.rate_limit,
                window_seconds=self.rate_window,
            )
            if not decision.allowed:
                messages.warning(
                    request,
                    wait_message(
                        reason=f"{self.rate_limited_noun} are limited to "
                        f"{per_window_text(self.rate_limit, self.rate_window)}",
                        action=self.rate_limited_action,
                        seconds=decision.retry_after_seconds,
                    ),
                )
                if self.rate_limited_redirect:
                    return redirect(self.rate_limited_redirect, license_id=self.license.public_id)
                return redirect(self.license.get_absolute_url())
        response = super().dispatch(request, *args, **kwargs)
        if request.method == "HEAD":
            response = head_response(response)
        return response


def head_response(response: HttpResponseBase) -> HttpResponseBase:
    """The answer to a HEAD: the GET's status and headers, no body. A streamed body is
    closed before a single chunk is produced, so the work behind it never starts."""
    if not isinstance(response, StreamingHttpResponse):
        return response
    # Close the unstarted generator (no page of the export is ever read). Not
    # response.close(): that also announces the end of the request (request_finished).
    closers = response._resource_closers  # type: ignore[attr-defined]
    for close in closers:
        close()
    closers.clear()
    empty = HttpResponse(status=response.status_code)
    for name, value in response.items():
        empty[name] = value
    return empty
