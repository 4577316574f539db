"""The upstream asked from the web, on a customer's click: the Test API page's ping and its
checks (each read once, no retries, a short deadline), and the slot that lets one web
request of a license at a time wait on the upstream (Test API, Refresh Data). The HTTP,
its timeouts and its error wording are the client's (usage/upstream.py); what the Test API
page shows is in the customer's words: they call the upstream "the API"."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import httpx
from django.conf import settings

from portal.bounded_http import outbound_deadline
from portal.leases import lease
from usage.upstream import (
    PingResult,
    UpstreamClient,
    answer_error_text,
    answer_json,
    transport_error_text,
)


@contextmanager
def upstream_web_slot(license_id: int, *, seconds: float) -> Iterator[bool]:
    """At most one upstream call in flight per license from the web (Test API, Refresh
    Data): yields False while another request of this license holds the slot. A lease, so
    a request that dies holding it frees it after `seconds`."""
    with lease(f"upstream_web:{license_id}", seconds=seconds) as held:
        yield held


# What the customer calls the upstream on the Test API page.
API = "The API"


def _in_customer_words(text: str) -> str:
    """The client's error ("Upstream refused the connection.") as the customer says it."""
    return re.sub(r"^Upstream\b", API, text)


def upstream_ping(*, license_key: str) -> PingResult:
    """Ask the upstream whether it answers for this license (the Test API page)."""
    with UpstreamClient(fail_fast=True) as client:
        result = client.ping(license_key=license_key)
    return replace(result, error=_in_customer_words(result.error))


@dataclass(frozen=True)
class UpstreamCheck:
    """One request of the Test API page's checks: what was asked and what came back."""

    name: str
    ok: bool
    status_code: int | None
    latency_ms: float
    summary: str  # in plain words


def upstream_checks(*, license_key: str) -> list[UpstreamCheck]:
    """Ask each read the upstream offers once (no retries), for the Test API page.

    The upstream is a metering API: it has no dry-run of AI calls, and its reads change
    nothing, so each read is its own dry run — ping, one record of usage, the summary.
    """
    checks: list[UpstreamCheck] = []
    asks: tuple[tuple[str, str, dict[str, str | int]], ...] = (
        ("ping", "/v1/ping", {"license": license_key}),
        ("usage (1 record)", "/v1/usage", {"license": license_key, "limit": 1}),
        ("usage summary", "/v1/usage/summary", {"license": license_key}),
    )
    with UpstreamClient() as client:
        for name, path, params in asks:
            started = time.monotonic()
            try:
                with outbound_deadline(settings.UPSTREAM_WEB_TIMEOUT_SECONDS):
                    response = client.http.get(
                        path,
                        params=params,
                        timeout=client.request_timeout(settings.UPSTREAM_WEB_TIMEOUT_SECONDS),
                    )
            except httpx.TransportError as exc:
                latency = (time.monotonic() - started) * 1000
                checks.append(
                    UpstreamCheck(name, False, None, latency, f"{API} {transport_error_text(exc)}.")
                )
                continue
            latency = (time.monotonic() - started) * 1000
            if response.status_code >= 400:
                summary = f"{API} {answer_error_text(response)}."
            elif path == "/v1/usage":
                try:
                    records = answer_json(response).get("records", [])
                except (ValueError, AttributeError):
                    records = []
                summary = f"Answered with {len(records)} record{'s' if len(records) != 1 else ''}."
            elif path == "/v1/usage/summary":
                try:
                    count = answer_json(response).get("records", 0)
                except (ValueError, AttributeError):
                    count = 0
                summary = f"Counts {count} API calls in all."
            else:
                summary = "Answered."
            checks.append(
                UpstreamCheck(
                    name, response.status_code < 400, response.status_code, latency, summary
                )
            )
    return checks
