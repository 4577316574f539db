"""The client of the upstream metering API (contract: docs/upstream-api.md).

Every request ends by a wall-clock deadline (UPSTREAM_REQUEST_DEADLINE_SECONDS, the whole
request: an upstream sending a byte at a time cannot stretch it) and reads at most
UPSTREAM_MAX_ANSWER_BYTES (portal/bounded_http.py), besides its connect and read timeouts.
Answers that may succeed when asked again (5xx,
429, timeouts, refused connections) are retried a bounded number of times with
exponential backoff and full jitter, so many workers retrying at once do not hit the
upstream in lockstep. A deadline, when given, caps both the waits and each request's
timeout, so a Refresh Data click never outlives its time budget.
"""

import functools
import json
import logging
import random
import ssl
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from django.conf import settings

from portal.bounded_http import AnswerTooLarge, DeadlineTransport, outbound_deadline
from portal.breaker import breaker_failure, breaker_success, breaker_wait
from portal.ratelimit import duration_text

logger = logging.getLogger(__name__)

MAX_CURSOR_LENGTH = 200  # SyncState.cursor
BACKOFF_CAP_SECONDS = 8.0
BREAKER = "upstream"

T = TypeVar("T")


class UpstreamError(Exception):
    """The upstream did not give a usable answer. The message is meant for people."""

    def __init__(self, message: str, *, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class UpstreamOutOfTime(UpstreamError):
    """The caller's deadline came before a usable answer (the upstream may just be slow)."""


class UpstreamKnownDown(UpstreamError):
    """The circuit breaker is open: the web does not wait on an upstream known to be down."""


def upstream_down_message(seconds: int) -> str:
    return (
        "Upstream is not answering (several requests in a row failed) — the portal will "
        f"try it again in {duration_text(seconds)}."
    )


def _breaker_failure(error: str) -> None:
    breaker_failure(
        BREAKER,
        threshold=settings.UPSTREAM_BREAKER_FAILURES,
        open_seconds=settings.UPSTREAM_BREAKER_OPEN_SECONDS,
        error=error,
    )


def _breaker_check(fail_fast: bool) -> None:
    if fail_fast:
        wait = breaker_wait(BREAKER)
        if wait:
            raise UpstreamKnownDown(upstream_down_message(wait))


@dataclass(frozen=True)
class UsagePage:
    records: list
    next_cursor: str
    has_more: bool


@dataclass(frozen=True)
class ChangesPage:
    license_keys: list[str]
    next_cursor: str
    has_more: bool


@dataclass(frozen=True)
class PingResult:
    ok: bool
    status_code: int | None
    latency_ms: float
    body: dict | None
    error: str


def answer_json(response: httpx.Response) -> Any:
    """The answer's JSON. NaN and Infinity (which Python's parser accepts) stay strings, so a
    record carrying them is refused as "not a whole number" instead of reaching the database."""
    return json.loads(response.content, parse_constant=str)


def _usage_page_of(body: dict) -> UsagePage:
    """A /v1/usage answer as a page, or UpstreamError if it is not shaped like one."""
    records, next_cursor, has_more = (
        body.get("records"),
        body.get("next_cursor"),
        body.get("has_more"),
    )
    if (
        not isinstance(records, list)
        or not isinstance(next_cursor, str)
        or not isinstance(has_more, bool)
    ):
        raise UpstreamError("Upstream sent a page without records, next_cursor or has_more.")
    if len(next_cursor) > MAX_CURSOR_LENGTH:
        raise UpstreamError(f"Upstream sent a cursor longer than {MAX_CURSOR_LENGTH} characters.")
    return UsagePage(records, next_cursor, has_more)


def transport_error_text(exc: httpx.TransportError) -> str:
    """What went wrong on the way, for people: "timed out connecting", "refused the connection"."""
    if isinstance(exc, AnswerTooLarge):
        return f"sent {exc}"
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out waiting for an answer"
    if isinstance(exc, httpx.ConnectError):
        return "refused the connection" if "refused" in str(exc).lower() else "could not be reached"
    return f"broke off the connection ({type(exc).__name__})"


def answer_error_text(response: httpx.Response) -> str:
    """An error answer for people: "answered 503: <the upstream's error>"."""
    try:
        detail = response.json().get("error", "")
    except (ValueError, AttributeError):
        detail = ""
    return f"answered {response.status_code}" + (f": {detail}" if detail else "")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client. Building one loads the whole
    CA bundle: about 30 ms, which was more than half of what syncing an idle license cost
    when each sync built its own (benchmark 5)."""
    return httpx.create_ssl_context()


class UpstreamClient:
    """One HTTP connection pool to the upstream; use it as a context manager."""

    def __init__(
        self, *, base_url: str | None = None, token: str | None = None, fail_fast: bool = False
    ):
        # fail_fast: a web request; answered at once while the circuit breaker is open.
        self.fail_fast = fail_fast
        self.base_url = (base_url or settings.UPSTREAM_URL).rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {token or settings.UPSTREAM_TOKEN}",
                "Accept": "application/json",
                "User-Agent": "token-credit-portal",
            },
            timeout=self.request_timeout(),
            transport=DeadlineTransport(
                deadline_seconds=settings.UPSTREAM_REQUEST_DEADLINE_SECONDS,
                max_bytes=settings.UPSTREAM_MAX_ANSWER_BYTES,
                verify=_tls_context(),
            ),
        )

    def __enter__(self) -> "UpstreamClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    @staticmethod
    def request_timeout(cap: float | None = None) -> httpx.Timeout:
        connect, read = settings.UPSTREAM_CONNECT_TIMEOUT, settings.UPSTREAM_READ_TIMEOUT
        if cap is not None:
            connect, read = min(connect, cap), min(read, cap)
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)

    def get_json(self, path: str, params: dict, *, deadline: float | None = None) -> dict:
        """GET with bounded retries; returns the JSON object or raises UpstreamError."""
        _breaker_check(self.fail_fast)
        return self._breaker_noted(lambda: self._get_json(path, params, deadline=deadline))

    @staticmethod
    def _breaker_noted(call: Callable[[], T]) -> T:
        """`call`'s answer, its outcome noted on the circuit breaker (in the caller's thread:
        the breaker lives in the database, and only the caller's thread has its connection)."""
        try:
            answer = call()
        except UpstreamError as exc:
            if exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429:
                _breaker_failure(exc.message)
            raise
        breaker_success(BREAKER)
        return answer

    def _get_json(self, path: str, params: dict, *, deadline: float | None = None) -> dict:
        attempts = max(1, settings.UPSTREAM_MAX_ATTEMPTS)
        last = ""
        for attempt in range(1, attempts + 1):
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0.05:
                raise UpstreamOutOfTime(f"Upstream {last or 'was not asked'}; out of time.")
            status_code = None
            try:
                budget = nullcontext() if remaining is None else outbound_deadline(remaining)
                with budget:
                    response = self.http.get(
                        path, params=params, timeout=self.request_timeout(remaining)
                    )
            except AnswerTooLarge as exc:
                raise UpstreamError(f"Upstream sent {exc}.") from None
            except httpx.TransportError as exc:
                last = transport_error_text(exc)
                capped = remaining is not None and remaining < settings.UPSTREAM_READ_TIMEOUT
                if capped and isinstance(exc, httpx.TimeoutException):
                    raise UpstreamOutOfTime(f"Upstream {last}; out of time.") from None
            else:
                status_code = response.status_code
                if response.status_code < 400:
                    try:
                        body = answer_json(response)
                    except ValueError:
                        body = None
                    if not isinstance(body, dict):
                        raise UpstreamError(
                            "Upstream answered with something that is not a JSON object.",
                            status_code=status_code,
                        )
                    return body
                last = answer_error_text(response)
                if response.status_code < 500 and response.status_code != 429:
                    raise UpstreamError(f"Upstream {last}.", status_code=status_code)
            logger.warning(
                "upstream %s %s attempt %d/%d: %s",
                path,
                params.get("license"),
                attempt,
                attempts,
                last,
            )
            if attempt == attempts:
                raise UpstreamError(
                    f"Upstream {last} ({attempts} attempts).", status_code=status_code
                )
            # Full jitter: anywhere between 0 and the exponential step.
            delay = random.uniform(
                0, min(BACKOFF_CAP_SECONDS, settings.UPSTREAM_BACKOFF_SECONDS * 2 ** (attempt - 1))
            )
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise UpstreamOutOfTime(f"Upstream {last}; out of time.", status_code=status_code)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def usage_page(
        self, *, license_key: str, after: str, limit: int, deadline: float | None = None
    ) -> UsagePage:
        body = self.get_json(
            "/v1/usage", {"license": license_key, "after": after, "limit": limit}, deadline=deadline
        )
        return _usage_page_of(body)

    def usage_pages(
        self,
        *,
        license_key: str,
        after: str,
        limit: int,
        prepare: Callable[[UsagePage], T],
        deadline: float | None = None,
        max_pages: int | None = None,
    ) -> Generator[tuple[UsagePage, T], None, None]:
        """The pages from `after` on, each with `prepare(page)`, until the last one (or
        `max_pages`, or the deadline: then UpstreamOutOfTime, as from `usage_page`).

        One page ahead: while the caller records a page, the next one is asked for, decoded
        and prepared in a thread (`prepare` must not touch the database: that thread has no
        connection of its own). The sync's HTTP wait and its per-record Python then overlap
        with PostgreSQL's work on the page before, instead of adding to it. A page is asked
        for only with its predecessor's cursor, so nothing is skipped or fetched twice; the
        caller's stored cursor is still what decides where the next run starts.
        """
        _breaker_check(self.fail_fast)

        def fetch(cursor: str) -> tuple[UsagePage, T] | UpstreamError:
            body = self._get_json(
                "/v1/usage",
                {"license": license_key, "after": cursor, "limit": limit},
                deadline=deadline,
            )
            try:
                page = _usage_page_of(body)
            except UpstreamError as unusable:
                # An answer, just not a page: a success for the breaker, as in usage_page.
                return unusable
            return page, prepare(page)

        pages = 0
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upstream-page")
        finished = False
        try:
            ahead = executor.submit(fetch, after)
            while True:
                fetched = self._breaker_noted(ahead.result)
                if isinstance(fetched, UpstreamError):
                    raise fetched
                page, prepared = fetched
                pages += 1
                more = (
                    page.has_more
                    and (max_pages is None or pages < max_pages)
                    and (deadline is None or time.monotonic() < deadline)
                )
                if more:
                    ahead = executor.submit(fetch, page.next_cursor)
                yield page, prepared
                if not more:
                    finished = True
                    return
        finally:
            # Stopped early (the caller broke off or failed): the page in flight is dropped
            # unread, without waiting for its answer.
            executor.shutdown(wait=finished, cancel_futures=True)

    def usage_changes(self, *, after: str, limit: int) -> ChangesPage:
        """One page of the feed of licenses with new usage since the feed cursor `after`."""
        body = self.get_json("/v1/usage/changes", {"after": after, "limit": limit})
        licenses, next_cursor, has_more = (
            body.get("licenses"),
            body.get("next_cursor"),
            body.get("has_more"),
        )
        if (
            not isinstance(licenses, list)
            or not isinstance(next_cursor, str)
            or not isinstance(has_more, bool)
        ):
            raise UpstreamError(
                "Upstream sent a feed page without licenses, next_cursor or has_more."
            )
        if len(next_cursor) > MAX_CURSOR_LENGTH:
            raise UpstreamError(
                f"Upstream sent a feed cursor longer than {MAX_CURSOR_LENGTH} characters."
            )
        keys = [
            item["license"]
            for item in licenses
            if isinstance(item, dict) and isinstance(item.get("license"), str)
        ]
        if len(keys) != len(licenses):
            raise UpstreamError("Upstream sent a feed entry without a license key.")
        return ChangesPage(keys, next_cursor, has_more)

    def summary(self, *, license_key: str) -> dict:
        return self.get_json("/v1/usage/summary", {"license": license_key})

    def ping(self, *, license_key: str) -> PingResult:
        """One attempt, no retries, a short deadline (UPSTREAM_WEB_TIMEOUT_SECONDS): the Test
        API page shows what really happened, and at once while the upstream is known down."""
        wait = breaker_wait(BREAKER) if self.fail_fast else 0
        if wait:
            return PingResult(False, None, 0.0, None, upstream_down_message(wait))
        started = time.monotonic()
        try:
            with outbound_deadline(settings.UPSTREAM_WEB_TIMEOUT_SECONDS):
                response = self.http.get(
                    "/v1/ping",
                    params={"license": license_key},
                    timeout=self.request_timeout(settings.UPSTREAM_WEB_TIMEOUT_SECONDS),
                )
        except httpx.TransportError as exc:
            latency = (time.monotonic() - started) * 1000
            error = f"Upstream {transport_error_text(exc)}."
            _breaker_failure(error)
            return PingResult(False, None, latency, None, error)
        latency = (time.monotonic() - started) * 1000
        if response.status_code >= 500:
            _breaker_failure(f"Upstream {answer_error_text(response)}.")
        else:
            breaker_success(BREAKER)
        try:
            body = answer_json(response)
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else None
        if response.status_code >= 400:
            return PingResult(
                False,
                response.status_code,
                latency,
                body,
                f"Upstream {answer_error_text(response)}.",
            )
        return PingResult(True, response.status_code, latency, body, "")


def upstream_summary(*, license_key: str) -> dict:
    """The upstream's own totals for a license, to compare with the ledger."""
    with UpstreamClient() as client:
        return client.summary(license_key=license_key)
