"""Probes for the services the portal depends on, shared by /healthz and `preflight`."""

import functools
import logging
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from portal.replica import error_line, replica_status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    detail: str = ""


def probe_database() -> Probe:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Probe("database", True)
    except Exception as exc:  # any failure means "down"; the detail says which
        logger.warning("health: database not answering: %s", exc)
        return Probe("database", False, str(exc).strip().splitlines()[0] if str(exc) else "")


@functools.cache
def probe_redis_client(url: str) -> redis.Redis:
    """One client per process and address: its pool keeps a connection between probes (a
    probe that connected each time measured Redis's handshake, not Redis), and drops a
    broken one."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


def probe_redis() -> Probe:
    try:
        probe_redis_client(settings.REDIS_URL).ping()
        return Probe("redis", True)
    except redis.RedisError as exc:
        logger.warning("health: redis not answering: %s", exc)
        return Probe("redis", False, str(exc))


def probe_replica() -> dict[str, object]:
    """The read replica as /healthz shows it: state (up, lagging, down or off) and its lag.
    Read fresh; a replica outage is reported but is not the portal's (pages read from the
    primary meanwhile)."""
    try:
        status = replica_status(fresh=True)
    except DatabaseError as exc:  # the primary, asked for its WAL position, did not answer
        return {"state": "unknown", "detail": error_line(exc)}
    report: dict[str, object] = {"state": status.state}
    if status.lag_seconds is not None:
        report.update(lag_seconds=status.lag_seconds, lag_bytes=status.lag_bytes)
    if status.detail:
        report["detail"] = status.detail
    return report
