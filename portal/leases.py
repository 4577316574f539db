"""Leases: claims on a piece of work that end by themselves (portal.models.Lease).

A lease is taken and released in one short statement each, so nobody holds a database lock
or an open transaction while the work (a network call) runs; a process that dies holding one
only delays the work until `expires_at`.
"""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection
from django.utils import timezone

_ACQUIRE_SQL = """
INSERT INTO portal_lease (key, holder, expires_at) VALUES (%(key)s, %(holder)s, %(until)s)
ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
    WHERE portal_lease.expires_at <= %(now)s
RETURNING holder
"""


def lease_acquire(*, key: str, seconds: float) -> str | None:
    """Take the lease `key` for `seconds`; its holder token, or None while another holds it."""
    now = timezone.now()
    holder = secrets.token_hex(16)
    with connection.cursor() as cursor:
        cursor.execute(
            _ACQUIRE_SQL,
            {"key": key, "holder": holder, "until": now + timedelta(seconds=seconds), "now": now},
        )
        row = cursor.fetchone()
    return holder if row is not None and row[0] == holder else None


def lease_release(*, key: str, holder: str) -> None:
    """Give the lease back (only the holder's own: an expired one taken over stays)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM portal_lease WHERE key = %s AND holder = %s", [key, holder])


@contextmanager
def lease(key: str, *, seconds: float) -> Iterator[bool]:
    """`with lease(key, seconds=...) as held:` — held is False while someone else has it."""
    holder = lease_acquire(key=key, seconds=seconds)
    try:
        yield holder is not None
    finally:
        if holder is not None:
            lease_release(key=key, holder=holder)
