"""Probes for the services the portal depends on, shared by /healthz and `preflight`."""

import logging
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

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


def probe_redis() -> Probe:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
        return Probe("redis", True)
    except redis.RedisError as exc:
        logger.warning("health: redis not answering: %s", exc)
        return Probe("redis", False, str(exc))
    finally:
        client.close()
