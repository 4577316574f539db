"""1. Dashboard server time (p50/p95 over warm requests) and SQL query count by history size."""

import time

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bench.stats import summary_ms

REQUESTS = 300
WARMUP = 20


def run(env: dict, keys: list[str]) -> dict:
    client = Client()
    client.force_login(env["user"])
    urls = {
        k: reverse("usage:dashboard", kwargs={"license_id": env["licenses"][k].public_id})
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
    timings = {k: [] for k in keys}
    # Round-robin, so drift in the machine's load hits every size alike.
    for _ in range(REQUESTS):
        for key, url in urls.items():
            started = time.perf_counter()
            response = client.get(url)
            timings[key].append(time.perf_counter() - started)
            assert response.status_code == 200
    return {k: {**summary_ms(v), "queries": queries[k]} for k, v in timings.items()}
