"""1. Dashboard server time (p50/p95 over warm requests) and SQL query count by history size,
and the usage explorer over a year (by day and endpoint) on the largest license.

In-process, through Django's test client: the whole request (middleware, session, the
view, the template) without the network, so what is measured is the server's work. The
sizes are requested round-robin, so drift in the machine's load hits every size alike.

Each size is measured two ways in the same rounds: "kept", the page as a customer gets it
while nothing it shows has changed (its ledger's sections from the render cache,
dashboard/render_cache.py), and "drawn", with the render cache emptied before each request
(every section drawn from the rollups and the recent entries: the first request after a
posting, and what every request cost before the render cache).
"""

import os
import time
from datetime import timedelta

from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bench.stats import summary_ms
from dashboard.render_cache import cache_key

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


MODES = ("kept", "drawn")


def run(env: dict, keys: list[str], requests: int = REQUESTS) -> dict:
    client = Client()
    client.force_login(env["user"])
    urls = {
        k: reverse("dashboard:overview", kwargs={"license_id": env["licenses"][k].public_id})
        for k in keys
    }
    sections = caches["dashboard"]
    for url in urls.values():
        for _ in range(WARMUP):
            assert client.get(url).status_code == 200
    queries: dict[tuple[str, str], int] = {}
    for key, url in urls.items():
        for mode in MODES:
            if mode == "drawn":
                sections.delete(cache_key(env["licenses"][key].pk))
            with CaptureQueriesContext(connection) as ctx:
                client.get(url)
            queries[key, mode] = len(ctx.captured_queries)
    timings: dict[tuple[str, str], list[float]] = {(k, m): [] for k in keys for m in MODES}
    sql: dict[tuple[str, str], list[float]] = {(k, m): [] for k in keys for m in MODES}
    # This process's CPU time per request: what the page costs in Python, whatever else
    # runs on the machine (wall time waits for the cores too).
    cpu_times: dict[tuple[str, str], list[float]] = {(k, m): [] for k in keys for m in MODES}
    sizes: dict[str, int] = {}
    timer = SqlTimer()
    load_before = os.getloadavg()
    with connection.execute_wrapper(timer):
        for _ in range(requests):
            for key, url in urls.items():
                for mode in MODES:
                    if mode == "drawn":  # this license's sections only
                        sections.delete(cache_key(env["licenses"][key].pk))
                    timer.seconds = 0.0
                    cpu = time.process_time()
                    started = time.perf_counter()
                    response = client.get(url)
                    timings[key, mode].append(time.perf_counter() - started)
                    cpu_times[key, mode].append(time.process_time() - cpu)
                    sql[key, mode].append(timer.seconds)
                    assert response.status_code == 200
                    sizes[key] = len(response.content)
    return {
        "load": [load_before[0], os.getloadavg()[0]],
        "sizes": {
            k: {
                m: {
                    **summary_ms(timings[k, m]),
                    "queries": queries[k, m],
                    "sql_p50": summary_ms(sql[k, m])["p50"],
                    "cpu_p50": summary_ms(cpu_times[k, m])["p50"],
                    "cpu_p95": summary_ms(cpu_times[k, m])["p95"],
                    "html_bytes": sizes[k],
                }
                for m in MODES
            }
            for k in keys
        },
    }


def run_explorer(env: dict, key: str, requests: int = REQUESTS) -> dict:
    """The usage explorer over the last 365 local days, by day and endpoint, of `key`:
    365 bars from the rollups, whatever the ledger's length (dashboard.selectors.explorer)."""
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
