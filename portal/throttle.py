"""Progressive delays after failures (OWASP ASVS 2.2.1), counted in PostgreSQL per key.

A key (an account, an address) may fail `free` times at no cost; each failure after that
makes the next attempt wait twice as long (2 s, 4 s, 8 s …), and from `limit` failures on
it is locked out for the whole cool-off. A count left alone for a cool-off starts again.
The waits are answered at once with how long is left: nobody's thread is put to sleep.
"""

import math
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from portal.models import FailureCount

_FAIL_SQL = """
INSERT INTO portal_failurecount (key, failures, last_failure_at) VALUES (%(key)s, 1, %(now)s)
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN portal_failurecount.last_failure_at <= %(stale)s
                    THEN 1 ELSE portal_failurecount.failures + 1 END,
    last_failure_at = %(now)s
"""


@dataclass(frozen=True)
class Throttle:
    free: int  # failures that cost nothing
    limit: int  # failures that lock out for the whole cool-off
    cooloff_seconds: int

    def delay_after(self, failures: int) -> int:
        """Seconds the next attempt must wait after `failures` failures in a row."""
        if failures < max(1, self.free):
            return 0
        if failures >= self.limit:
            return self.cooloff_seconds
        return min(self.cooloff_seconds, 2 ** (failures - self.free + 1))


def throttle_wait(*, key: str, throttle: Throttle) -> int:
    """Seconds before `key` may try again (0: now)."""
    row = FailureCount.objects.filter(key=key).values_list("failures", "last_failure_at").first()
    if row is None:
        return 0
    failures, last = row
    elapsed = (timezone.now() - last).total_seconds()
    if elapsed >= throttle.cooloff_seconds:
        return 0
    return max(0, math.ceil(throttle.delay_after(failures) - elapsed))


def throttle_failure(*, key: str, throttle: Throttle) -> None:
    """Count one failure under `key` (a stale count starts again at 1)."""
    now = timezone.now()
    stale = now - timedelta(seconds=throttle.cooloff_seconds)
    with connection.cursor() as cursor:
        cursor.execute(_FAIL_SQL, {"key": key, "now": now, "stale": stale})


def throttle_clear(*, key: str) -> None:
    FailureCount.objects.filter(key=key).delete()
