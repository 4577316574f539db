"""1. Dashboard server time (p50/p95 over warm requests) and SQL query count by history size,
and the usage explorer over a year (by day and endpoint) on the largest license.

In-process, through Django's test client: the whole request (middleware, session, the
view, the template) without the network, so what is measured is the server's work. The
sizes are requested round-robin, so drift in the machine's load hits every size alike.
"""

import time
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bench.stats import summary_ms

REQUESTS = 300
WARMUP = 20


class SqlTimer:
    """Adds up the time spent in the database driver (an execute wrapper: cheap enough to
    leave on while timing, unlike CaptureQueriesContext)."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


def run(env: dict, keys: list[str], requests: int = REQUESTS) -> dict:
    client = Client()
    client.force_login(env["user"])
    urls = {
        k: reverse("dashboard:overview", kwargs={"license_id": env["licenses"][k].public_id})
        for k in keys
    }
    for url in urls.values():
        for _ in range(WARMUP):
            assert client.get(url).status_code == 200
    queries = {}
    for key, url in urls.items():
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        queries[key] = len(ctx.captured_queries)
    timings: dict[str, list[float]] = {k: [] for k in keys}
    sql: dict[str, list[float]] = {k: [] for k in keys}
    sizes: dict[str, int] = {}
    timer = SqlTimer()
    with connection.execute_wrapper(timer):
        for _ in range(requests):
            for key, url in urls.items():
                timer.seconds = 0.0
                started = time.perf_counter()
                response = client.get(url)
                timings[key].append(time.perf_counter() - started)
                sql[key].append(timer.seconds)
                assert response.status_code == 200
                sizes[key] = len(response.content)
    return {
        k: {
            **summary_ms(v),
            "queries": queries[k],
            "sql_p50": summary_ms(sql[k])["p50"],
            "html_bytes": sizes[k],
        }
        for k, v in timings.items()
    }


def run_explorer(env: dict, key: str, requests: int = REQUESTS) -> dict:
    """The usage explorer over the last 365 local days, by day and endpoint, of `key`:
    365 bars from the rollups, whatever the ledger's length (dashboard.explorer)."""
    license = env["licenses"][key]
    client = Client()
    client.force_login(env["user"])
    today = timezone.now().astimezone(license.tzinfo).date()
    url = reverse("dashboard:usage_explorer", kwargs={"license_id": license.public_id})
    params = {
        "from": (today - timedelta(days=364)).isoformat(),
        "to": today.isoformat(),
        "granularity": "day",
        "group_by": "endpoint",
    }
    for _ in range(WARMUP):
        response = client.get(url, params)
        # The chart is there (not the "not ready" notice or a refused range).
        assert response.status_code == 200 and b'data-testid="explorer-chart"' in response.content
    with CaptureQueriesContext(connection) as ctx:
        client.get(url, params)
    # Counted now: every request clears the query log (Django's request_started signal).
    queries = len(ctx.captured_queries)
    timings: list[float] = []
    sql: list[float] = []
    timer = SqlTimer()
    with connection.execute_wrapper(timer):
        for _ in range(requests):
            timer.seconds = 0.0
            started = time.perf_counter()
            response = client.get(url, params)
            timings.append(time.perf_counter() - started)
            sql.append(timer.seconds)
            assert response.status_code == 200
    return {
        "license": key,
        **summary_ms(timings),
        "queries": queries,
        "sql_p50": summary_ms(sql)["p50"],
        "html_bytes": len(response.content),
    }
