"""Prometheus metrics at /metrics (bearer token METRICS_TOKEN, or a staff session), written
by the official client library (prometheus_client) from collectors run at scrape time.

Request latency is counted in Redis so every web process and host adds to one histogram;
sync figures are read from the database when scraped. Metrics are never allowed to hurt a
page: when Redis fails, counting pauses for a while instead of slowing each request.
"""

import logging
import secrets
import time
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
# What a Redis call may raise: its own errors, and (seen under gunicorn's threads when a
# 0.2 s timeout closed a socket another call was using) ValueError "I/O operation on closed
# file" and OSError "Bad file descriptor" straight from the socket.
_REDIS_FAILURES = (redis.RedisError, OSError, ValueError)


class _RedisCounter:
    def __init__(self):
        self._client = None
        self._paused_until = 0.0

    def client(self):
        if self._client is None:
            self._client = redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=0.2, socket_timeout=0.2
            )
        return self._client

    def observe(self, seconds: float, status: int) -> None:
        if time.monotonic() < self._paused_until:
            return
        bucket = next((b for b in LATENCY_BUCKETS if seconds <= b), "+Inf")
        try:
            pipe = self.client().pipeline(transaction=False)
            pipe.hincrby(_KEY, f"bucket:{bucket}", 1)
            pipe.hincrby(_KEY, f"status:{status // 100}xx", 1)
            pipe.hincrbyfloat(_KEY, "sum", seconds)
            pipe.execute()
        except _REDIS_FAILURES as exc:
            self._paused_until = time.monotonic() + _BREAKER_SECONDS
            self._client = None  # its connections may be broken: a new pool after the pause
            logger.warning("metrics: Redis unavailable, pausing request metrics: %r", exc)

    def read(self) -> dict[str, str]:
        try:
            raw = self.client().hgetall(_KEY)
        except _REDIS_FAILURES as exc:
            logger.warning("metrics: cannot read request metrics: %r", exc)
            return {}
        return {k.decode(): v.decode() for k, v in raw.items()}


request_counter = _RedisCounter()


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
