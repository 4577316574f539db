"""The simulator's HTTP server: the upstream contract (docs/upstream-api.md) over the
standard library's threading HTTP server, so it needs no dependency and runs anywhere,
in its own process (`run_upstream_simulator`) or in a thread of a test."""

import hmac
import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from usage.simulator.core import (
    DEFAULT_LIMIT,
    FEED_DEFAULT_LIMIT,
    FEED_MAX_LIMIT,
    MAX_LIMIT,
    BadCursor,
    Simulator,
)
from usage.simulator.generator import rfc3339

logger = logging.getLogger(__name__)

VERSION = "simulator-1"


class SimulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "SimulatorHTTPServer"
    server_version = "UpstreamSimulator/1"

    def log_message(self, format, *args):
        logger.debug("simulator %s " + format, self.client_address[0], *args)

    def do_GET(self):
        sim = self.server.simulator
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path.rstrip("/") or "/"
        if path == "/healthz":
            return self.send_json(HTTPStatus.OK, {"status": "ok", "version": VERSION})
        routes = {
            "/v1/ping": self.ping,
            "/v1/usage": self.usage,
            "/v1/usage/summary": self.summary,
        }
        if path not in routes and path != "/v1/usage/changes":
            return self.send_json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {path}"})
        sim.count_request(path)
        if not self.authorized():
            return self.send_json(
                HTTPStatus.UNAUTHORIZED,
                {"error": "missing or wrong bearer token"},
                headers={"WWW-Authenticate": 'Bearer realm="upstream"'},
            )
        if sim.faults.latency_ms:
            time.sleep(sim.faults.latency_ms / 1000 * (0.5 + sim.roll()))
        if path != "/v1/usage/summary":  # the summary is the reference: never faulty
            if sim.faults.timeout_share and sim.roll() < sim.faults.timeout_share:
                sim.count(timeouts_injected=1)
                time.sleep(sim.faults.timeout_seconds)
                self.close_connection = True
                return None
            if sim.faults.error_share and sim.roll() < sim.faults.error_share:
                sim.count(errors_injected=1)
                status = (
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    HTTPStatus.BAD_GATEWAY,
                    HTTPStatus.SERVICE_UNAVAILABLE,
                )[int(sim.roll() * 3)]
                return self.send_json(status, {"error": "injected fault"})
        if path == "/v1/usage/changes":  # across licenses: no license parameter
            if sim.faults.feed_error_share and sim.roll() < sim.faults.feed_error_share:
                sim.count(errors_injected=1)
                return self.send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "injected fault"})
            return self.changes(sim, query)
        key = query.get("license", "")
        if not key:
            return self.send_json(HTTPStatus.BAD_REQUEST, {"error": "license is required"})
        if key not in sim.streams:
            return self.send_json(HTTPStatus.NOT_FOUND, {"error": f"unknown license {key}"})
        return routes[path](sim, key, query)

    def authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.server.simulator.token.encode()
        )

    def ping(self, sim: Simulator, key: str, query: dict):
        return self.send_json(
            HTTPStatus.OK,
            {
                "ok": True,
                "license": key,
                "server_time": rfc3339(datetime.now(tz=UTC)),
                "version": VERSION,
            },
        )

    def usage(self, sim: Simulator, key: str, query: dict):
        try:
            limit = int(query.get("limit") or DEFAULT_LIMIT)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            return self.send_json(
                HTTPStatus.BAD_REQUEST, {"error": f"limit must be 1 to {MAX_LIMIT}"}
            )
        try:
            page = sim.usage_page(key=key, after=query.get("after", ""), limit=limit)
        except BadCursor:
            return self.send_json(HTTPStatus.BAD_REQUEST, {"error": "bad cursor"})
        return self.send_json(
            HTTPStatus.OK,
            {
                "license": key,
                "records": page.records,
                "next_cursor": page.next_cursor,
                "has_more": page.has_more,
            },
        )

    def changes(self, sim: Simulator, query: dict):
        try:
            limit = int(query.get("limit") or FEED_DEFAULT_LIMIT)
        except ValueError:
            limit = 0
        if not 1 <= limit <= FEED_MAX_LIMIT:
            return self.send_json(
                HTTPStatus.BAD_REQUEST, {"error": f"limit must be 1 to {FEED_MAX_LIMIT}"}
            )
        try:
            page = sim.changes(after=query.get("after", ""), limit=limit)
        except BadCursor:
            return self.send_json(HTTPStatus.BAD_REQUEST, {"error": "bad cursor"})
        return self.send_json(
            HTTPStatus.OK,
            {"licenses": page.licenses, "next_cursor": page.next_cursor, "has_more": page.has_more},
        )

    def summary(self, sim: Simulator, key: str, query: dict):
        return self.send_json(HTTPStatus.OK, sim.summary(key=key))

    def send_json(self, status: int, body: dict, headers: dict | None = None):
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a request hanging in the timeout fault must not hold up stop()

    def __init__(self, address: tuple[str, int], simulator: Simulator):
        super().__init__(address, SimulatorHandler)
        self.simulator = simulator

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def handle_error(self, request, client_address):
        # A client that gave up (its timeout) before the answer was written is expected here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("simulator: %s hung up before the answer", client_address[0])
            return
        super().handle_error(request, client_address)


class RunningSimulator:
    """A simulator serving in a background thread (tests)."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0):
        self.simulator = simulator
        self.server = SimulatorHTTPServer((host, port), simulator)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> "RunningSimulator":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
