"""Locks shared by the apps."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)


@contextmanager
def advisory_lock(name: str) -> Iterator[bool]:
    """Try to take a PostgreSQL session advisory lock named `name`; yields whether it did.

    Never waits. The lock belongs to this process's database connection, not to a
    transaction, so it spans many transactions; and PostgreSQL drops it by itself when the
    connection ends, so a process killed while holding it never leaves it stuck.
    (A transaction-pooling proxy such as PgBouncer in transaction mode would break this.)
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [name])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [name])
            except DatabaseError:
                # The connection is gone, and the lock with it.
                logger.warning("advisory lock %s: connection lost before unlock", name)
