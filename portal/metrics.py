"""Prometheus metrics at /metrics (bearer token METRICS_TOKEN, or a staff session).

Request latency is counted in Redis so every web process and host adds to one histogram;
sync figures are read from the database when scraped. Metrics are never allowed to hurt a
page: when Redis fails, counting pauses for a while instead of slowing each request.
"""

import logging
import secrets
import time
from collections.abc import Callable, Mapping

import redis
from django.conf import settings
from django.http import HttpResponse
from django.views import View

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_KEY = "portal:metrics:http"
_BREAKER_SECONDS = 30


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
        except redis.RedisError as exc:
            self._paused_until = time.monotonic() + _BREAKER_SECONDS
            logger.warning("metrics: Redis unavailable, pausing request metrics: %s", exc)

    def read(self) -> dict[str, str]:
        try:
            raw = self.client().hgetall(_KEY)
        except redis.RedisError as exc:
            logger.warning("metrics: cannot read request metrics: %s", exc)
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


def metric_line(name: str, value: object, labels: Mapping[str, object] | None = None) -> str:
    if labels:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        return f"{name}{{{inner}}} {value}"
    return f"{name} {value}"


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# Apps above portal add their families here (usage: the sync's), from their AppConfig.ready.
_collectors: list[Callable[[], list[str]]] = []


def collector_register(collect: Callable[[], list[str]]) -> None:
    """Add a function returning exposition lines (# HELP, # TYPE, samples) to /metrics."""
    if collect not in _collectors:
        _collectors.append(collect)


def render_metrics() -> str:
    lines = [
        "# HELP portal_http_request_duration_seconds Web request latency.",
        "# TYPE portal_http_request_duration_seconds histogram",
    ]
    http = request_counter.read()
    cumulative = 0
    for bucket in (*LATENCY_BUCKETS, "+Inf"):
        cumulative += int(http.get(f"bucket:{bucket}", 0))
        lines.append(
            metric_line("portal_http_request_duration_seconds_bucket", cumulative, {"le": bucket})
        )
    lines.append(metric_line("portal_http_request_duration_seconds_sum", float(http.get("sum", 0))))
    lines.append(metric_line("portal_http_request_duration_seconds_count", cumulative))
    lines += ["# HELP portal_http_responses_total Responses by status class.",
              "# TYPE portal_http_responses_total counter"]  # fmt: skip
    for status in ("2xx", "3xx", "4xx", "5xx"):
        lines.append(
            metric_line(
                "portal_http_responses_total",
                int(http.get(f"status:{status}", 0)),
                {"status": status},
            )
        )

    for collect in _collectors:
        lines += collect()
    return "\n".join(lines) + "\n"


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
        return HttpResponse(
            render_metrics(), content_type="text/plain; version=0.0.4; charset=utf-8"
        )
