"""1. Dashboard server time (p50/p95 over warm requests) and SQL query count by history size.

In-process, through Django's test client: the whole request (middleware, session, the
view, the template) without the network, so what is measured is the server's work. The
sizes are requested round-robin, so drift in the machine's load hits every size alike.
"""

import time

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

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
