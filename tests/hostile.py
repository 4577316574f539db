"""Servers that misbehave on purpose, on loopback, each in a thread of the test process:
an HTTP answer dribbled a byte at a time, an answer of gigabytes, and a proxy that holds
a request's answer back (a Stripe that hangs and then answers)."""

import socket
import threading
import time
from collections.abc import Callable


class _Server:
    """Accepts connections on 127.0.0.1 and hands each to `handle` in a thread of its own."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.requests = 0
        self.got_request = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                request = read_request(conn)
                self.requests += 1
                self.got_request.set()
                self.handle(conn, request)
        except OSError:
            pass  # the client hung up: what these servers are for

    def handle(self, conn: socket.socket, request: bytes) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.sock.close()
        for thread in self._threads:
            thread.join(timeout=5)


def read_request(conn: socket.socket) -> bytes:
    """One HTTP request (headers and a Content-Length body) from a connection."""
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class Dribbler(_Server):
    """Answers a byte at a time, one every `interval` seconds, for `seconds` in all: a
    status line and headers that never end, as slowly as a read timeout allows."""

    def __init__(self, *, interval: float = 0.5, seconds: float = 60) -> None:
        super().__init__()
        self.interval, self.seconds = interval, seconds
        self.sent = 0
        self.hung_up = threading.Event()

    def handle(self, conn: socket.socket, request: bytes) -> None:
        answer = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"." * 10_000
        until = time.monotonic() + self.seconds
        try:
            for byte in answer:
                if self.stopped.is_set() or time.monotonic() > until:
                    return
                conn.sendall(bytes([byte]))
                self.sent += 1
                time.sleep(self.interval)
        except OSError:
            self.hung_up.set()


class DribblingMailServer(_Server):
    """An SMTP server that greets a byte every `interval` seconds and never finishes the line."""

    def __init__(self, *, interval: float = 0.2, seconds: float = 60) -> None:
        super().__init__()
        self.interval, self.seconds = interval, seconds

    def _serve(self, conn: socket.socket) -> None:  # the server speaks first
        self.requests += 1
        self.got_request.set()
        until = time.monotonic() + self.seconds
        try:
            with conn:
                for byte in b"220 " + b"." * 10_000:
                    if self.stopped.is_set() or time.monotonic() > until:
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(self.interval)
        except OSError:
            pass


class Flood(_Server):
    """Answers 200 with a body of `size` bytes, sent as fast as the client takes it; counts
    what it managed to send before the client hung up."""

    def __init__(self, *, size: int) -> None:
        super().__init__()
        self.size = size
        self.sent = 0

    def handle(self, conn: socket.socket, request: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            + f"Content-Length: {self.size}\r\n\r\n".encode()
        )
        block = b"x" * 65536
        conn.settimeout(10)
        while self.sent < self.size and not self.stopped.is_set():
            part = block[: self.size - self.sent]
            conn.sendall(part)
            self.sent += len(part)


class StallingProxy(_Server):
    """A proxy to `target_port` (plain HTTP/1.1, one request per connection): each request
    is forwarded at once, and its answer held back for `hold(request)` seconds before it is
    passed on (0: at once). The server behind it does the work when asked, as a Stripe that
    hangs and then answers does."""

    def __init__(self, target_port: int, hold: Callable[[bytes], float]) -> None:
        super().__init__()
        self.target_port = target_port
        self.hold = hold
        self.forwarded: list[bytes] = []

    def handle(self, conn: socket.socket, request: bytes) -> None:
        # One request per connection: ask the server behind to close after its answer.
        head, _, body = request.partition(b"\r\n\r\n")
        lines = [
            line
            for line in head.split(b"\r\n")
            if not line.lower().startswith((b"connection:", b"keep-alive:"))
        ]
        forwarded = b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body
        self.forwarded.append(forwarded)
        with socket.create_connection(("127.0.0.1", self.target_port), timeout=30) as upstream:
            upstream.sendall(forwarded)
            answer = b""
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                answer += chunk
        wait = self.hold(request)
        if wait:
            self.stopped.wait(wait)
        conn.sendall(answer)
