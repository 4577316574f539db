"""The read replica's state, as this process last saw it (DATABASE_REPLICA_URL, optional).

Where the replica stands decides whether customer reads may go to it (portal.db_router):
- **up**: it answers, it is a standby (`pg_is_in_recovery()`), and it lags the primary by at
  most REPLICA_MAX_LAG_SECONDS and REPLICA_MAX_LAG_BYTES;
- **lagging**: it answers but is further behind: reads go to the primary until it catches up;
- **down**: it does not answer (or is no standby): reads go to the primary, and this process
  leaves it alone for REPLICA_RETRY_SECONDS, so no request waits on its connect timeout
  more than once in that time.

Each process re-reads the state at most every REPLICA_CHECK_SECONDS (two one-row queries,
one on each server); /healthz reads it fresh. A replay position only moves forward, so an
old reading is a safe lower bound for read-your-writes.
"""

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

REPLICA = "replica"  # the alias in settings.DATABASES when DATABASE_REPLICA_URL is set

UP, LAGGING, DOWN, OFF = "up", "lagging", "down", "off"


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def error_line(exc: BaseException) -> str:
    """The first line of a database error's message (libpq's are several lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def lsn_parse(text: str) -> int:
    """A WAL position as PostgreSQL prints it ("16/B374D848") as one number."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True)
class ReplicaStatus:
    state: str  # UP, LAGGING, DOWN or OFF (no replica configured)
    replay_lsn: int | None = None  # what the replica has replayed (a WAL position)
    lag_bytes: int | None = None  # the primary's WAL position minus the replay position
    lag_seconds: float | None = None  # 0 when nothing is left to replay
    detail: str = ""
    read_at: float = 0.0  # time.monotonic() of the reading

    @property
    def readable(self) -> bool:
        return self.state == UP


_REPLICA_SQL = """
SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
       extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8
"""


def _read() -> ReplicaStatus:
    now = time.monotonic()
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(_REPLICA_SQL)
            in_recovery, replay_text, since_replay = cursor.fetchone()
    except DatabaseError as exc:
        # The connection is unusable now; drop it so the next try connects afresh.
        connections[REPLICA].close()
        detail = error_line(exc)
        logger.warning("replica: not answering, reads go to the primary: %s", detail)
        return ReplicaStatus(DOWN, detail=detail, read_at=now)
    if not in_recovery or replay_text is None:
        logger.warning("replica: DATABASE_REPLICA_URL is not a standby; reads go to the primary")
        return ReplicaStatus(
            DOWN, detail="not a standby (pg_is_in_recovery() is false)", read_at=now
        )
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        (primary_text,) = cursor.fetchone()
    replay = lsn_parse(replay_text)
    lag_bytes = max(0, lsn_parse(primary_text) - replay)
    # Seconds since the last replayed commit say how far behind only while WAL is waiting:
    # a caught-up replica of an idle primary is not behind at all.
    lag_seconds = 0.0 if lag_bytes == 0 else max(0.0, since_replay or 0.0)
    behind = (
        lag_seconds > settings.REPLICA_MAX_LAG_SECONDS or lag_bytes > settings.REPLICA_MAX_LAG_BYTES
    )
    return ReplicaStatus(
        LAGGING if behind else UP,
        replay_lsn=replay,
        lag_bytes=lag_bytes,
        lag_seconds=round(lag_seconds, 3),
        detail=f"{lag_seconds:.1f} s and {lag_bytes} bytes behind" if behind else "",
        read_at=now,
    )


class _Cache:
    def __init__(self):
        self.lock = threading.Lock()
        self.status = ReplicaStatus(OFF)

    def get(self, *, fresh: bool = False) -> ReplicaStatus:
        if not replica_configured():
            return ReplicaStatus(OFF)
        now = time.monotonic()
        with self.lock:
            status = self.status
            keep = (
                settings.REPLICA_RETRY_SECONDS
                if status.state == DOWN
                else settings.REPLICA_CHECK_SECONDS
            )
            if status.state != OFF and now - status.read_at < keep and not fresh:
                return status
            self.status = status = _read()
            return status

    def mark_down(self, detail: str) -> None:
        with self.lock:
            self.status = ReplicaStatus(DOWN, detail=detail, read_at=time.monotonic())


_cache = _Cache()


def replica_status(*, fresh: bool = False) -> ReplicaStatus:
    """The replica's state, at most REPLICA_CHECK_SECONDS old (a down replica's reading is
    kept for REPLICA_RETRY_SECONDS); `fresh` reads it now (/healthz)."""
    return _cache.get(fresh=fresh)


def replica_mark_down(detail: str) -> None:
    """A read on the replica failed: leave it alone for REPLICA_RETRY_SECONDS."""
    logger.warning("replica: a read failed, reads go to the primary: %s", detail)
    _cache.mark_down(detail)


def replica_replayed(lsn: int) -> bool:
    """Whether the replica has replayed the primary's WAL up to `lsn` (read-your-writes).
    The cached position answers when it is far enough; otherwise the replica is asked."""
    status = replica_status()
    if not status.readable:
        return False
    if status.replay_lsn is not None and status.replay_lsn >= lsn:
        return True
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
            (replay_text,) = cursor.fetchone()
    except DatabaseError as exc:
        connections[REPLICA].close()
        replica_mark_down(error_line(exc))
        return False
    return replay_text is not None and lsn_parse(replay_text) >= lsn


def primary_wal_lsn() -> int:
    """The primary's WAL position now: past every commit this process has made so far."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        (text,) = cursor.fetchone()
    return lsn_parse(text)


# --- /metrics -----------------------------------------------------------------------------


def replica_metric_values() -> dict[str, float]:
    """portal_replica_up (1 when customer reads may go to it), and its lag when it answers."""
    status = replica_status()
    values: dict[str, float] = {"portal_replica_up": 1.0 if status.readable else 0.0}
    if status.lag_seconds is not None:
        values["portal_replica_lag_seconds"] = status.lag_seconds
    if status.lag_bytes is not None:
        values["portal_replica_lag_bytes"] = float(status.lag_bytes)
    return values


_METRIC_HELP = {
    "portal_replica_up": "1 when customer reads go to the read replica (it answers, within the lag limits).",
    "portal_replica_lag_seconds": "How far the read replica's replay is behind the primary, in seconds.",
    "portal_replica_lag_bytes": "How far the read replica's replay is behind the primary, in bytes of WAL.",
}


class ReplicaCollector(Collector):
    """The read replica's gauges on /metrics (none without DATABASE_REPLICA_URL): the same
    cached state the router reads, so a scrape costs at most one check of the replica."""

    def collect(self) -> Iterator[Metric]:
        if not replica_configured():
            return
        for name, value in replica_metric_values().items():
            yield GaugeMetricFamily(name, _METRIC_HELP[name], value=value)
