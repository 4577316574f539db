"""The gate's holds ending: released by the usage posting that records their calls (in its
transaction), and answers forgotten a while after they expired. Kept apart from the gate
itself (billing.limits.gate) so that the posting and the tasks import only this."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import License
from billing.limits.models import GateHold

# The ids go as one array: the ORM's `request_id__in` sends a page's thousand ids as a
# thousand parameters, which took ~11 ms of a 1,000-record push (6 ms of it
# Python quoting them), the array 2 ms (issue 27's profile).
_RELEASE_SQL = f"""
UPDATE {GateHold._meta.db_table} SET released_at = %(at)s
WHERE license_id = %(license_id)s AND allowed AND released_at IS NULL
  AND request_id = ANY(%(request_ids)s::text[])
"""  # noqa: S608 (the model's table name; every value is a bound parameter)


def gate_holds_release(*, license: License, request_ids: list[str], at: datetime) -> int:
    """The usage records carrying these request ids have posted: their holds end (inside
    the posting's transaction). Returns how many holds were released."""
    wanted = sorted({r for r in request_ids if r})
    if not wanted:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE_SQL, {"at": at, "license_id": license.pk, "request_ids": wanted})
        return cursor.rowcount


def gate_holds_prune(*, now: datetime | None = None, batch: int = 10_000) -> int:
    """Forget answers GATE_ANSWER_KEEP_SECONDS after they expired (their request id may be
    answered afresh from then on), a batch per statement so no statement runs long.
    Returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.GATE_ANSWER_KEEP_SECONDS)
    deleted = 0
    while True:
        ids = list(
            GateHold.objects.filter(expires_at__lt=cutoff).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += GateHold.objects.filter(pk__in=ids).delete()[0]
