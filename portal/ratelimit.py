"""Rate limits for expensive customer actions (refresh, Test API, CSV download)."""

import math
from dataclasses import dataclass
from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
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


class LicenseRateLimitMixin:
    """Limits a license-scoped view to `rate_limit` requests per `rate_window` seconds per
    license (for the methods in `rate_limited_methods`). Over the limit, the customer goes
    back to the dashboard with a plain message saying when to try again.

    List it after LicenseMixin in the bases, so `self.license` is resolved (and a stranger got a 404) first.
    """

    rate_scope: str
    rate_limit: int
    rate_window: int
    rate_limited_methods = ("get", "post")
    rate_limited_action = "do this"

    def dispatch(self, request, *args, **kwargs):
        if not hasattr(self, "license"):
            raise ImproperlyConfigured("list LicenseRateLimitMixin after LicenseMixin")
        if request.method.lower() in self.rate_limited_methods:
            decision = rate_limit_hit(
                key=f"{self.rate_scope}:{self.license.pk}",
                limit=self.rate_limit,
                window_seconds=self.rate_window,
            )
            if not decision.allowed:
                messages.warning(
                    request,
                    f"You can {self.rate_limited_action} again in "
                    f"{decision.retry_after_seconds} second{'s' if decision.retry_after_seconds != 1 else ''}.",
                )
                return redirect("usage:dashboard", license_id=self.license.public_id)
        return super().dispatch(request, *args, **kwargs)
