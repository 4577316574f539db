"""Checks that PostgreSQL and Redis answer before anything else runs.

On failure it prints one line naming the variable, the address tried and how to start
the service, and exits 1 — no traceback. With --create-database it creates the database
named in DATABASE_URL when it is missing.
"""

import sys
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.core.management.base import BaseCommand
from psycopg import sql

PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
)


class Command(BaseCommand):
    help = "Check that PostgreSQL and Redis answer; optionally create the database."

    def add_arguments(self, parser):
        parser.add_argument("--create-database", action="store_true")

    def handle(self, *args, create_database=False, **options):
        db = settings.DATABASES["default"]
        address = f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"
        conninfo: dict[str, Any] = {
            "host": db.get("HOST") or None,
            "port": db.get("PORT") or None,
            "user": db.get("USER") or None,
            "password": db.get("PASSWORD") or None,
            "connect_timeout": 3,
        }
        try:
            with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
                ).fetchone()
                if not exists and create_database:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
                    self.stdout.write(f"created database {db['NAME']}")
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.fail(
                f"PostgreSQL is not answering at {address} (DATABASE_URL): {reason}. "
                f"Start it with: {PG_START}"
            )

        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3)
        try:
            client.ping()
        except redis.RedisError as exc:
            self.fail(
                f"Redis is not answering at {settings.REDIS_URL} (REDIS_URL): {exc}. "
                f"Start it with: {REDIS_START}"
            )
        finally:
            client.close()

    def fail(self, line: str):
        self.stderr.write(line)
        sys.exit(1)
