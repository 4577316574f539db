"""A circuit breaker per dependency, kept in PostgreSQL so every web process shares it.

After `threshold` failures in a row the breaker opens for `open_seconds`: callers that ask
(`breaker_wait`) are answered at once instead of waiting on a dependency known to be down.
When the time is up the next call goes through as a trial: a success closes the breaker, a
failure opens it again at once. Workers keep calling (and so probe) regardless.
"""

import math
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from portal.models import CircuitBreaker

_FAILURE_SQL = """
INSERT INTO portal_circuitbreaker
    (name, consecutive_failures, opened_until, last_failure_at, last_error)
VALUES (%(name)s, 1, CASE WHEN 1 >= %(threshold)s THEN %(until)s END, %(now)s, %(error)s)
ON CONFLICT (name) DO UPDATE SET
    consecutive_failures = portal_circuitbreaker.consecutive_failures + 1,
    opened_until = CASE WHEN portal_circuitbreaker.consecutive_failures + 1 >= %(threshold)s
                        THEN %(until)s ELSE portal_circuitbreaker.opened_until END,
    last_failure_at = %(now)s,
    last_error = %(error)s
"""


def breaker_wait(name: str) -> int:
    """Seconds the breaker `name` stays open (0: closed or ready for a trial call)."""
    until = CircuitBreaker.objects.filter(name=name).values_list("opened_until", flat=True).first()
    if until is None:
        return 0
    return max(0, math.ceil((until - timezone.now()).total_seconds()))


def breaker_failure(name: str, *, threshold: int, open_seconds: float, error: str = "") -> None:
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _FAILURE_SQL,
            {
                "name": name,
                "threshold": threshold,
                "until": now + timedelta(seconds=open_seconds),
                "now": now,
                "error": error[:500],
            },
        )


def breaker_success(name: str) -> None:
    CircuitBreaker.objects.filter(name=name).exclude(
        consecutive_failures=0, opened_until__isnull=True
    ).update(consecutive_failures=0, opened_until=None)
