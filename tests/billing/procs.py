"""Running real OS processes against the test database (for concurrency and exit codes)."""

import os
from urllib.parse import quote

from django.db import connection


def test_database_url() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def child_env() -> dict:
    """The environment of a child process: the same settings, pointed at the test database."""
    env = dict(os.environ)
    env["DATABASE_URL"] = test_database_url()
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    env["DB_CONN_MAX_AGE"] = "0"
    return env
