"""4. Dashboard throughput under gunicorn, with concurrent clients, idle and while a CSV
export streams.

gunicorn runs as `make run` runs it (2 gthread workers of 4 threads, DEBUG off) against
the bench database; wrk drives the dashboard over loopback with a fixed number of
connections, each request carrying one of several logged-in sessions (a real session
cookie, so the whole request path runs: session, login, tenancy, the page). The same run
is made twice: idle, then while curl downloads a license's complete history back to back.

Beside it, throughput with and without the render cache (dashboard/render_cache.py): a
second gunicorn with DASHBOARD_RENDER_CACHE=false draws every dashboard in full, and windows
on the two alternate at 1, 2 and 16 clients.
"""

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.setup import BENCH_DATABASE_URL, ROOT

DURATION = 10  # seconds per wrk run
WINDOWS = 6  # idle / export pairs
# Clients at once: 1 keeps about one core busy with dashboards, 2 keep both busy at idle
# (the workers' ceiling on this machine is reached at about 2), so an export has to take
# its share from them.
LEVELS = (1, 2)
SATURATING_CONNECTIONS = 16
SESSIONS = 32
# Render cache on / off: windows per side and the numbers of clients compared.
COMPARE_WINDOWS = 3
COMPARE_LEVELS = (1, 2, SATURATING_CONNECTIONS)

WRK_SCRIPT = """
local cookies = {%(cookies)s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", wrk.path, {["Cookie"] = cookies[(n %% #cookies) + 1]})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "status_errors": %%d, "socket_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def ensure_wrk() -> str | None:
    """wrk's path, installing Debian's package when it is missing (like .ci/run does for
    Chromium); None when it cannot be had."""
    path = shutil.which("wrk")
    if path:
        return path
    print("installing wrk (apt-get install -y wrk) …", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"]):
        subprocess.run(cmd, env=env, capture_output=True, check=False)
        if cmd[1] == "update":
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True, check=False
            )
        path = shutil.which("wrk")
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, **extra_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        **extra_env,
        "DATABASE_URL": BENCH_DATABASE_URL,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    proc = subprocess.Popen(
        [
            gunicorn, "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--worker-class", "gthread", "--threads", "4",
            "--timeout", "300", "--log-level", "warning",
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("gunicorn did not answer /healthz within 30 s")


def session_cookies(user, count: int) -> list[str]:
    from django.conf import settings
    from django.test import Client

    cookies = []
    for _ in range(count):
        client = Client()
        client.force_login(user)
        cookies.append(
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
    return cookies


def check_page(url: str, cookie: str, expect: str) -> None:
    request = urllib.request.Request(url, headers={"Cookie": cookie})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        body = response.read().decode()
        assert response.status == 200 and expect in body, (response.status, url)


def run_wrk(wrk: str, url: str, script: str, duration: int, connections: int) -> dict:
    out = subprocess.run(
        [wrk, "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s",
         "-s", script, url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1]
    result = json.loads(line)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["p50_ms"] = result["p50_us"] / 1000
    result["p95_ms"] = result["p95_us"] / 1000
    result["p99_ms"] = result["p99_us"] / 1000
    return result


class Exporter:
    """Downloads a CSV history again and again, reading as fast as it comes, until stopped
    (a thread: reading sockets holds the GIL little)."""

    def __init__(self, url: str, cookie: str):
        self.request = urllib.request.Request(url, headers={"Cookie": cookie})  # noqa: S310 - loopback
        self.stop = threading.Event()
        self.bytes = 0
        self.completed = 0
        self.started = self.ended = 0.0
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        self.started = time.perf_counter()
        while not self.stop.is_set():
            with urllib.request.urlopen(self.request, timeout=60) as response:  # noqa: S310
                # A redirect (no history, a rate limit) would be followed to an HTML page.
                assert response.headers["Content-Type"].startswith("text/csv"), response.url
                while not self.stop.is_set():
                    chunk = response.read(1 << 20)
                    if not chunk:
                        self.completed += 1
                        break
                    self.bytes += len(chunk)
        self.ended = time.perf_counter()

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / (self.ended - self.started) if self.ended > self.started else 0.0

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=60)


def summary(runs: list[dict]) -> dict:
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p95_ms": statistics.median(r["p95_ms"] for r in runs),
        "p95_ms_each": [round(r["p95_ms"], 1) for r in runs],
        "requests": sum(r["requests"] for r in runs),
        "errors": sum(r["status_errors"] + r["socket_errors"] for r in runs),
    }


def run(
    env: dict,
    dashboard_key: str,
    export_key: str,
    *,
    windows: int = WINDOWS,
    duration: int = DURATION,
    levels: tuple[int, ...] = LEVELS,
) -> dict:
    """For each number of clients: alternating windows, idle then with the export
    streaming, `windows` times each (the machine is shared; alternating lets its drift hit
    both sides alike). Then the throughput ceiling, idle, with more clients than threads."""
    from django.urls import reverse

    wrk = ensure_wrk()
    if wrk is None:
        return {"skipped": "wrk is not installed and apt-get could not install it"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    dashboard = env["licenses"][dashboard_key]
    exported = env["licenses"][export_key]
    dashboard_url = base + reverse("dashboard:overview", kwargs={"license_id": dashboard.public_id})
    export_url = base + reverse("dashboard:history_csv", kwargs={"license_id": exported.public_id})
    cookies = session_cookies(env["user"], SESSIONS)
    gunicorn = start_gunicorn(port)
    port_off = free_port()
    drawn_url = dashboard_url.replace(base, f"http://127.0.0.1:{port_off}")
    gunicorn_off = start_gunicorn(port_off, DASHBOARD_RENDER_CACHE="false")
    results: dict[int, dict] = {}
    compare: dict[int, dict] = {}
    try:
        check_page(dashboard_url, cookies[0], dashboard.name)
        check_page(drawn_url, cookies[0], dashboard.name)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(WRK_SCRIPT % {"cookies": ", ".join(json.dumps(c) for c in cookies)})
            script = f.name
        # Warm every worker and thread; this first window at the ceiling also counts as one.
        ceiling = [run_wrk(wrk, dashboard_url, script, duration, SATURATING_CONNECTIONS)]
        for connections in levels:
            idle: list[dict] = []
            busy: list[dict] = []
            export_rates: list[float] = []
            for _ in range(windows):
                idle.append(run_wrk(wrk, dashboard_url, script, duration, connections))
                with Exporter(export_url, cookies[-1]) as exporter:
                    time.sleep(1)  # the export is streaming before the clients start
                    busy.append(run_wrk(wrk, dashboard_url, script, duration, connections))
                export_rates.append(exporter.mb_per_s)
            results[connections] = {
                "idle": summary(idle),
                "busy": summary(busy),
                # Each busy window against the idle window just before it, then the median.
                "p95_ratio_pairs": statistics.median(
                    b["p95_ms"] / i["p95_ms"] for i, b in zip(idle, busy, strict=True)
                ),
                "export_mb_per_s": statistics.median(export_rates),
            }
        ceiling.append(run_wrk(wrk, dashboard_url, script, duration, SATURATING_CONNECTIONS))
        # Neighbours on a shared machine only ever lower a ceiling: the better window counts.
        saturated = max(ceiling, key=lambda r: r["rps"])
        run_wrk(wrk, drawn_url, script, duration, SATURATING_CONNECTIONS)  # warm it too
        load_before = os.getloadavg()[0]
        for connections in COMPARE_LEVELS:
            kept: list[dict] = []
            drawn: list[dict] = []
            for _ in range(COMPARE_WINDOWS):
                kept.append(run_wrk(wrk, dashboard_url, script, duration, connections))
                drawn.append(run_wrk(wrk, drawn_url, script, duration, connections))
            compare[connections] = {"kept": summary(kept), "drawn": summary(drawn)}
        compare_load = [load_before, os.getloadavg()[0]]
        os.unlink(script)
    finally:
        for proc in (gunicorn, gunicorn_off):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    return {
        "windows": windows,
        "duration": duration,
        "dashboard": dashboard_key,
        "export": export_key,
        "levels": results,
        "saturated": {"connections": SATURATING_CONNECTIONS, **summary([saturated])},
        "compare": {"windows": COMPARE_WINDOWS, "levels": compare, "load": compare_load},
    }
