"""Outbound HTTP that nobody outside can hold: a wall-clock deadline for the whole call and a
bounded read (docs/security.md, "Hung or hostile dependencies").

httpx's timeouts are per operation: a server that sends one byte every few seconds never
trips a read timeout, and an answer is read whole however large. Every client of something
outside the portal (webhook receivers, Stripe, the upstream) therefore sends its requests
through `deadline_transport`, an httpx transport (httpx's documented extension point) over
httpcore's connection pool with a network backend of our own (httpcore's documented
extension point). The backend gives every socket operation — connect, TLS handshake, each
read and write — at most the time left until the request's deadline, so the whole request,
its answer's body included, ends by then whatever the other side does; and it counts the
bytes of the answer, refusing more than the transport's `max_bytes`.

The deadline of a request is the sooner of the transport's `deadline_seconds` (from when the
request starts) and an enclosing `outbound_deadline(...)` block's, so a caller with a budget
of its own (a web request, Refresh Data) caps every call inside it.

Name lookups (getaddrinfo, which cannot be interrupted) run in a small pool of threads and
are waited for only until the deadline (`resolve`).
"""

import select
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

_deadline: ContextVar[float | None] = ContextVar("outbound_deadline", default=None)
# Name lookups with a deadline (resolve): a few threads, shared by the process.
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="resolve")


class AnswerTooLarge(httpx.TransportError):
    """The other side sent more than the transport reads (`max_bytes`)."""


class DeadlinePassed(httpx.TimeoutException):
    """The request's wall-clock deadline passed before it was done."""


@contextmanager
def outbound_deadline(seconds: float) -> Iterator[float]:
    """Every outbound request inside the block ends at most `seconds` from now (or by an
    enclosing block's deadline, if sooner). Yields the deadline (time.monotonic())."""
    until = time.monotonic() + seconds
    outer = _deadline.get()
    if outer is not None:
        until = min(until, outer)
    token = _deadline.set(until)
    try:
        yield until
    finally:
        _deadline.reset(token)


def deadline_remaining() -> float | None:
    """Seconds left before the current deadline (None outside any)."""
    until = _deadline.get()
    return None if until is None else until - time.monotonic()


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """The time one socket operation may take: its own timeout, cut to what is left of the
    deadline; `error` once nothing is left."""
    until = _deadline.get()
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise error("the deadline passed")
    return left if timeout is None else min(timeout, left)


def _readable(sock: socket.socket) -> bool:
    """An idle connection is readable only when the server closed it (or sent junk): then it
    must not be used again."""
    if sock.fileno() < 0:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


class _Stream(httpcore.NetworkStream):
    """A socket whose every operation ends by the deadline (CPython's TLS reads and
    handshakes keep one deadline across their internal waits, so a TLS record or handshake
    sent a byte at a time is cut off too)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            self._sock.settimeout(_left(timeout, httpcore.ReadTimeout))
            return self._sock.recv(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        try:
            while view:
                self._sock.settimeout(_left(timeout, httpcore.WriteTimeout))
                view = view[self._sock.send(view) :]
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    def close(self) -> None:
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        try:
            self._sock.settimeout(_left(timeout, httpcore.ConnectTimeout))
            return _Stream(ssl_context.wrap_socket(self._sock, server_hostname=server_hostname))
        except TimeoutError as exc:
            self.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:  # ssl.SSLError among them
            self.close()
            raise httpcore.ConnectError(str(exc)) from exc

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object" and isinstance(self._sock, ssl.SSLSocket):
            return self._sock._sslobj  # type: ignore[attr-defined]  # what httpcore asks for
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "socket":
            return self._sock
        if info == "is_readable":
            return _readable(self._sock)
        return None


class _Backend(httpcore.NetworkBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: OSError | None = None
        try:
            infos = resolve(host, port, timeout=_left(timeout, httpcore.ConnectTimeout))
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        for family, kind, proto, _name, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(_left(timeout, httpcore.ConnectTimeout))
                if local_address is not None:
                    sock.bind((local_address, 0))
                for option in socket_options or ():
                    sock.setsockopt(*option)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect(address)
                return _Stream(sock)
            except TimeoutError as exc:
                sock.close()
                raise httpcore.ConnectTimeout(str(exc)) from exc
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        raise httpcore.ConnectError(str(error or f"{host} has no address"))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("outbound calls go over TCP")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


# httpcore's errors as httpx's (the most specific first), so callers catch httpx's as usual.
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _as_httpx_errors(until: float) -> Iterator[None]:
    token = _deadline.set(until)
    try:
        yield
    except httpcore.TimeoutException as exc:
        if time.monotonic() >= until - 0.01:
            raise DeadlinePassed(f"no complete answer by the deadline ({exc})") from exc
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise
    finally:
        _deadline.reset(token)


class _Body(httpx.SyncByteStream):
    """The answer's body, read under the request's deadline, at most `max_bytes` of it."""

    def __init__(self, stream: Iterable[bytes], *, until: float, max_bytes: int) -> None:
        self._stream = stream
        self._until = until
        self._max_bytes = max_bytes

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        iterator = iter(self._stream)
        while True:
            with _as_httpx_errors(self._until):
                try:
                    part = next(iterator)
                except StopIteration:
                    return
            received += len(part)
            if received > self._max_bytes:
                raise AnswerTooLarge(f"the answer is larger than {self._max_bytes:,} bytes")
            yield part

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """An httpx transport whose requests end by a wall-clock deadline and read at most
    `max_bytes` of an answer's body (AnswerTooLarge beyond)."""

    def __init__(
        self,
        *,
        deadline_seconds: float,
        max_bytes: int,
        verify: ssl.SSLContext | None = None,
        max_connections: int = 10,
    ) -> None:
        self.deadline_seconds = deadline_seconds
        self.max_bytes = max_bytes
        self._pool = httpcore.ConnectionPool(
            ssl_context=verify or httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            network_backend=_Backend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        until = time.monotonic() + self.deadline_seconds
        outer = _deadline.get()
        if outer is not None:
            until = min(until, outer)
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("the deadline transport sends synchronous requests only")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors(until):
            response = self._pool.handle_request(core_request)
        if not isinstance(response.stream, Iterable):
            raise TypeError("httpcore answered with an asynchronous body")
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream, until=until, max_bytes=self.max_bytes),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def resolve(host: str, port: int, *, timeout: float | None) -> list[Any]:
    """socket.getaddrinfo(host, port) for TCP, or OSError once `timeout` seconds passed (the
    lookup itself cannot be cut short: it finishes in the background and is forgotten)."""
    future = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return future.result(timeout=None if timeout is None else max(timeout, 0.001))
    except FutureTimeout:
        raise OSError(f"looking up {host} took longer than {timeout:g} s") from None


def read_at_most(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """Up to `max_bytes` of a streamed answer's raw body, and whether there was more (the
    rest is never read: closing the response drops the connection)."""
    kept = bytearray()
    for part in response.iter_raw():
        room = max_bytes - len(kept)
        kept += part[:room]
        if len(part) > room:
            return bytes(kept), True
    return bytes(kept), False
