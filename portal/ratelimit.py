"""Rate limits for expensive customer actions (refresh, Test API, CSV download).

A limit is counted per requester (a login, an API key) so one member cannot use up
another's, and — for the same work reached by several doors — per license as well, so more
keys or more members do not buy more of it: the history export is one limit per license,
whether it is downloaded from the dashboard or through the API (`history_export_hit`).
"""

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
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


@dataclass(frozen=True)
class RateRefusal:
    """A request over a limit: when to try again, and a message saying which limit."""

    retry_after_seconds: int
    message: str


def license_limit_hit(
    *,
    scope: str,
    license_id: int,
    requester: str,
    limit: int,
    license_limit: int,
    window_seconds: int,
) -> tuple[RateDecision, bool]:
    """Count one attempt at `scope` on a license by `requester`; allowed while the requester
    is within `limit` and the license as a whole within `license_limit`, per window.
    (decision, whether the license-wide limit is the one that refused)."""
    own = rate_limit_hit(
        key=f"{scope}:{license_id}:{requester}", limit=limit, window_seconds=window_seconds
    )
    if not own.allowed:
        return own, False
    whole = rate_limit_hit(
        key=f"{scope}:{license_id}", limit=license_limit, window_seconds=window_seconds
    )
    return whole, not whole.allowed


HISTORY_EXPORT_SCOPE = "history_csv"


def history_export_hit(*, license_id: int, requester: str) -> RateRefusal | None:
    """Count one export of a license's history (the dashboard's Download History and the
    API's history.csv, the same work): None while allowed. HISTORY_CSV_RATE_LIMIT per
    requester and HISTORY_CSV_LICENSE_RATE_LIMIT per license, per
    HISTORY_CSV_RATE_WINDOW_SECONDS."""
    limit, whole = settings.HISTORY_CSV_RATE_LIMIT, settings.HISTORY_CSV_LICENSE_RATE_LIMIT
    window = settings.HISTORY_CSV_RATE_WINDOW_SECONDS
    decision, license_wide = license_limit_hit(
        scope=HISTORY_EXPORT_SCOPE,
        license_id=license_id,
        requester=requester,
        limit=limit,
        license_limit=whole,
        window_seconds=window,
    )
    if decision.allowed:
        return None
    reason = (
        f"History downloads of this license are limited to {per_window_text(whole, window)}, "
        "from the dashboard and the API together"
        if license_wide
        else f"History downloads are limited to {per_window_text(limit, window)}"
    )
    return RateRefusal(
        decision.retry_after_seconds,
        wait_message(reason=reason, action="download it", seconds=decision.retry_after_seconds),
    )


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
    `rate_window` seconds, per login and license (so one member cannot use up another's),
    or by the view's own `rate_limit_refusal` (a limit shared with another door).
    Over the limit, the customer goes back to `rate_limited_redirect` (the license's home page
    by default) with a plain message saying what the limit is and when to try again — or,
    for a download (`rate_limited_page`), gets a 429 page saying so, with Retry-After: never
    a page answering 200 where a file was expected.

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
    rate_limited_page = False  # a download: a 429 page instead of a redirect

    @property
    def rate_limit(self) -> int:
        raise NotImplementedError

    @property
    def rate_window(self) -> int:
        raise NotImplementedError

    def rate_limit_refusal(self, request: HttpRequest) -> RateRefusal | None:
        """Count this request; None while allowed."""
        user_id = request.user.pk if request.user.is_authenticated else "anonymous"
        decision = rate_limit_hit(
            key=f"{self.rate_scope}:{self.license.pk}:{user_id}",
            limit=self.rate_limit,
            window_seconds=self.rate_window,
        )
        if decision.allowed:
            return None
        return RateRefusal(
            decision.retry_after_seconds,
            wait_message(
                reason=f"{self.rate_limited_noun} are limited to "
                f"{per_window_text(self.rate_limit, self.rate_window)}",
                action=self.rate_limited_action,
                seconds=decision.retry_after_seconds,
            ),
        )

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
            refusal = self.rate_limit_refusal(request)
            if refusal is not None:
                return self.rate_limited_response(request, refusal)
        response = super().dispatch(request, *args, **kwargs)
        if request.method == "HEAD":
            response = head_response(response)
        return response

    def rate_limited_response(self, request: HttpRequest, refusal: RateRefusal) -> HttpResponse:
        if self.rate_limited_page:
            response = render(
                request,
                "429.html",
                {"license": self.license, "message": refusal.message},
                status=429,
            )
            response["Retry-After"] = str(refusal.retry_after_seconds)
            return response
        messages.warning(request, refusal.message)
        if self.rate_limited_redirect:
            return redirect(self.rate_limited_redirect, license_id=self.license.public_id)
        return redirect(self.license.get_absolute_url())


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
