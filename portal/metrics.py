"""Prometheus metrics at /metrics (bearer token METRICS_TOKEN, or a staff session), written
by the official client library (prometheus_client) from collectors run at scrape time.

Request latency is counted in Redis so every web process and host adds to one histogram;
sync figures are read from the database when scraped. Each process counts its requests in
memory and adds them to Redis at most once a second, in one pipeline, so a page does not
wait on a Redis round trip: a scrape adds its own process's counts first, another
process's reach Redis with its first request after its last flush plus a second (or when it
exits). Metrics are never allowed to hurt a page: when Redis fails, counting pauses for a
while instead of slowing each request.
"""

import atexit
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator

import redis
from django.conf import settings
from django.http import HttpResponse
from django.views import View
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_KEY = "portal:metrics:http"
_BREAKER_SECONDS = 30
_FLUSH_SECONDS = 1.0
# What a Redis call may raise: its own errors, and (seen under gunicorn's threads when a
# 0.2 s timeout closed a socket another call was using) ValueError "I/O operation on closed
# file" and OSError "Bad file descriptor" straight from the socket.
_REDIS_FAILURES = (redis.RedisError, OSError, ValueError)


class _RedisCounter:
    def __init__(self):
        self._client = None
        self._paused_until = 0.0
        # This process's counts not yet in Redis, and when they were last added: gunicorn's
        # threads share them, hence the lock (held for dict updates, never for Redis).
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._pending_sum = 0.0
        self._flushed_at = 0.0

    def client(self):
        if self._client is None:
            self._client = redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=0.2, socket_timeout=0.2
            )
        return self._client

    def observe(self, seconds: float, status: int) -> None:
        now = time.monotonic()
        if now < self._paused_until:
            return
        bucket = next((b for b in LATENCY_BUCKETS if seconds <= b), "+Inf")
        with self._lock:
            self._pending[f"bucket:{bucket}"] += 1
            self._pending[f"status:{status // 100}xx"] += 1
            self._pending_sum += seconds
            due = now - self._flushed_at >= _FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Add this process's pending counts to Redis (one pipeline). On failure they are
        dropped and counting pauses: metrics never slow a page down."""
        with self._lock:
            pending, seconds = self._pending, self._pending_sum
            self._pending, self._pending_sum = Counter(), 0.0
            self._flushed_at = time.monotonic()
        if not pending:
            return
        try:
            pipe = self.client().pipeline(transaction=False)
            for field, n in pending.items():
                pipe.hincrby(_KEY, field, n)
            pipe.hincrbyfloat(_KEY, "sum", seconds)
            pipe.execute()
        except _REDIS_FAILURES as exc:
            self._paused_until = time.monotonic() + _BREAKER_SECONDS
            self._client = None  # its connections may be broken: a new pool after the pause
            logger.warning("metrics: Redis unavailable, pausing request metrics: %r", exc)

    def read(self) -> dict[str, str]:
        self.flush()  # this process's own requests count on its own scrape at once
        try:
            raw = self.client().hgetall(_KEY)
        except _REDIS_FAILURES as exc:
            logger.warning("metrics: cannot read request metrics: %r", exc)
            return {}
        return {k.decode(): v.decode() for k, v in raw.items()}


request_counter = _RedisCounter()
atexit.register(request_counter.flush)  # a worker that exits cleanly keeps its last second


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        if request.path != "/metrics":
            request_counter.observe(time.perf_counter() - started, response.status_code)
        return response


class HttpCollector(Collector):
    """The request histogram and response counts, as counted in Redis by every process."""

    def collect(self) -> Iterator[Metric]:
        http = request_counter.read()
        cumulative = 0
        buckets = []
        for bucket in (*LATENCY_BUCKETS, "+Inf"):
            cumulative += int(http.get(f"bucket:{bucket}", 0))
            buckets.append((str(bucket), cumulative))
        yield HistogramMetricFamily(
            "portal_http_request_duration_seconds",
            "Web request latency.",
            buckets=buckets,
            sum_value=float(http.get("sum", 0)),
        )
        responses = CounterMetricFamily(
            "portal_http_responses", "Responses by status class.", labels=["status"]
        )
        for status in ("2xx", "3xx", "4xx", "5xx"):
            responses.add_metric([status], int(http.get(f"status:{status}", 0)))
        yield responses


# One registry of our own (not prometheus_client's global one, which would add this
# process's own figures: each web process would then answer differently). Every family on
# /metrics is an aggregate over all processes or all licenses, so the number of series
# stays the same whatever the number of tenants; per-license detail is in the admin and
# in the sync's log lines.
registry = CollectorRegistry(auto_describe=False)
registry.register(HttpCollector())


def collector_register(collector: Collector) -> None:
    """Add a collector's families to /metrics. The hook for whatever reports at scrape time:
    usage registers the sync's aggregates (usage/metrics.py, from usage.apps); a read
    replica's lag gauges are one more collector registered the same way. A collector's
    `collect()` runs on every scrape, so it must cost the same at any number of licenses
    (a few aggregate queries, never one per license)."""
    if collector not in _registered:
        _registered.append(collector)
        registry.register(collector)


_registered: list[Collector] = []


def render_metrics() -> bytes:
    return generate_latest(registry)


class MetricsView(View):
    def get(self, request):
        token = settings.METRICS_TOKEN
        header = request.headers.get("Authorization", "")
        by_token = bool(token) and secrets.compare_digest(header, f"Bearer {token}")
        # A staff session counts only once its second factor is verified (django-otp).
        by_staff = (
            request.user.is_authenticated
            and request.user.is_staff
            and getattr(request.user, "is_verified", lambda: False)()
        )
        if not (by_token or by_staff):
            return HttpResponse(
                "metrics need a bearer token\n", status=401, content_type="text/plain"
            )
        return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
