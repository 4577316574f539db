"""4. Dashboard throughput under gunicorn, with concurrent clients: idle, while a CSV export
streams from the primary, and while it streams from a read replica.

Everything here runs on a primary cluster of the bench's own (tests/services.py's
PrivatePostgres, kept in bench/data/web-primary/ between runs and loaded once, like the bench
database) and a streaming standby made fresh by `pg_basebackup -R` for each run and removed
after: the machine's cluster does not accept replication connections.

gunicorn runs as `make run` runs it (2 gthread workers of 4 threads, DEBUG off); wrk drives
the dashboard over loopback with a fixed number of connections, each request carrying one of
several logged-in sessions (a real session cookie, so the whole request path runs: session,
login, tenancy, the page). The dashboards' gunicorn has no replica: every window's dashboards
read the primary. The export is served by a gunicorn of its own, one without the replica and
one with DATABASE_REPLICA_URL (the CSV history is a replica read), so between the two export
windows only the postmaster that reads and sends the rows differs: the same Python formats the
CSV in a process apart from the dashboards' either way. A light writer (a sync's page of usage
records every half second, on another license) runs through every window so the replica has
something to replay; its lag is sampled throughout.

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

from bench.setup import ROOT
from tests.services import PrivatePostgres, PrivateStandby

DURATION = 10  # seconds per wrk run
WINDOWS = 6  # rounds of (idle, export from the primary, export from the replica)
# Clients at once: 1 keeps about one core busy with dashboards, 2 keep both busy at idle
# (the workers' ceiling on this machine is reached at about 2), 4 queue a little, so an
# export has to take its share from them.
LEVELS = (1, 2, 4)
# What a window runs beside the dashboards, in the order of the first round (each round
# starts one further along, so every kind of window comes first, second and third alike).
IDLE, FROM_PRIMARY, FROM_REPLICA = "idle", "primary", "replica"
KINDS = (IDLE, FROM_PRIMARY, FROM_REPLICA)
LAG_SAMPLE_SECONDS = 0.25
# Kept between runs, like the bench database (gitignored, under bench/data/).
PRIMARY_DIR = Path(os.environ.get("BENCH_WEB_PRIMARY_DIR", ROOT / "bench" / "data" / "web-primary"))
PRIMARY_DATABASE = "portal_bench_web"
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


def start_gunicorn(port: int, database_url: str, **extra_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        **extra_env,
        "DATABASE_URL": database_url,
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


class LagSampler:
    """How far the standby is behind, every LAG_SAMPLE_SECONDS, in a thread: bytes as the
    primary's pg_current_wal_lsn() minus the standby's pg_last_wal_replay_lsn() (what the
    portal's lag limit compares), seconds as PostgreSQL's own replay_lag
    (pg_stat_replication: from the primary flushing WAL to the standby having replayed it).
    Each sample also notes whether a client backend of the standby was running a query,
    which says where the export ran (nothing else reads the standby). `window()` brackets
    one wrk window."""

    def __init__(self, primary: PrivatePostgres, standby: PrivateStandby):
        import psycopg

        self.primary = psycopg.connect(primary.url, autocommit=True)
        self.standby = psycopg.connect(standby.url, autocommit=True)
        self.samples: list[tuple[int, float, bool]] | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    @staticmethod
    def row(connection, sql: str, params: list | None = None) -> tuple:
        row = connection.execute(sql, params).fetchone()
        assert row is not None, sql  # one-row queries
        return row

    def sample(self) -> tuple[int, float, bool]:
        (primary_lsn, replay_lag) = self.row(
            self.primary,
            "SELECT pg_current_wal_lsn()::text,"
            " (SELECT extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication LIMIT 1)",
        )
        (behind, reading) = self.row(
            self.standby,
            "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint,"
            " EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'client backend'"
            "         AND state = 'active' AND pid <> pg_backend_pid())",
            [primary_lsn],
        )
        return max(0, int(behind)), replay_lag or 0.0, bool(reading)

    def loop(self) -> None:
        while not self.stop.wait(LAG_SAMPLE_SECONDS):
            samples = self.samples
            if samples is not None:
                samples.append(self.sample())

    def window(self) -> "LagWindow":
        return LagWindow(self)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.primary.close()
        self.standby.close()


class LagWindow:
    def __init__(self, sampler: LagSampler):
        self.sampler = sampler
        self.result: dict = {}

    def __enter__(self):
        self.sampler.samples = []
        return self

    def __exit__(self, *exc):
        samples, self.sampler.samples = self.sampler.samples or [], None
        lag_bytes = [b for b, _, _ in samples] or [0]
        lag_seconds = [s for _, s, _ in samples] or [0.0]
        self.result = {
            "samples": len(samples),
            "bytes_p50": statistics.median(lag_bytes),
            "bytes_max": max(lag_bytes),
            "seconds_p50": statistics.median(lag_seconds),
            "seconds_max": max(lag_seconds),
            "replica_reading": sum(r for _, _, r in samples) / len(samples) if samples else 0.0,
        }


def lag_summary(windows: list[dict]) -> dict:
    """Over a level's windows of one kind: the median window's typical lag, the worst sample
    of any window, and the share of samples with the standby running a query (median)."""
    return {
        "bytes_p50": statistics.median(w["bytes_p50"] for w in windows),
        "bytes_max": max(w["bytes_max"] for w in windows),
        "seconds_p50": statistics.median(w["seconds_p50"] for w in windows),
        "seconds_max": max(w["seconds_max"] for w in windows),
        "replica_reading": statistics.median(w["replica_reading"] for w in windows),
        "samples": sum(w["samples"] for w in windows),
    }


def primary_start() -> PrivatePostgres:
    """The bench's primary, from its kept directory (initdb'd the first time)."""
    primary = PrivatePostgres(PRIMARY_DIR)
    primary.database = PRIMARY_DATABASE
    primary.stop()  # a server a killed run left behind
    primary.start()
    return primary


def primary_setup(primary: PrivatePostgres, key: str) -> dict:
    """Migrate, load `key` once (generate_usage, kept with the cluster), the writer's
    license, and SESSIONS logged-in session cookies: bench.web_primary in a child process
    pointed at the primary."""
    env = {**os.environ, "BENCH_DATABASE_URL": primary.url, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "bench.web_primary", "setup", key, str(SESSIONS)],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"bench.web_primary setup failed:\n{out.stderr[-3000:]}")
    sys.stdout.write(out.stderr[-2000:])  # what it loaded, if anything
    return json.loads(out.stdout.strip().splitlines()[-1])


def writer_start(primary: PrivatePostgres) -> subprocess.Popen:
    env = {**os.environ, "BENCH_DATABASE_URL": primary.url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "bench.web_primary", "write"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip


def writer_stop(proc: subprocess.Popen) -> int:
    """Stop the writer; the records it posted."""
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    lines = [ln for ln in (out or "").splitlines() if ln.startswith("{")]
    return json.loads(lines[-1])["records"] if lines else 0


def run(
    key: str,
    *,
    windows: int = WINDOWS,
    duration: int = DURATION,
    levels: tuple[int, ...] = LEVELS,
) -> dict:
    """For each number of clients: `windows` rounds of three windows (idle, the export from
    the primary, the export from the replica), each round starting one kind further along
    (the machine is shared; rotating lets its drift hit every kind alike). Then the
    throughput ceiling, idle, with more clients than threads, and the render cache on/off."""
    from django.urls import reverse

    wrk = ensure_wrk()
    if wrk is None:
        return {"skipped": "wrk is not installed and apt-get could not install it"}
    started_at = time.time()
    primary = primary_start()
    standby: PrivateStandby | None = None
    sampler: LagSampler | None = None
    writer: subprocess.Popen | None = None
    servers: list[subprocess.Popen] = []
    results: dict[int, dict] = {}
    compare: dict[int, dict] = {}
    try:
        made = primary_setup(primary, key)
        cookies = made["cookies"]
        started = time.perf_counter()
        standby = PrivateStandby(primary).start()
        basebackup_seconds = time.perf_counter() - started
        deadline = time.monotonic() + 300
        while not standby.caught_up():
            if time.monotonic() > deadline:
                raise RuntimeError("the standby did not catch up within 5 minutes")
            time.sleep(0.2)

        def serve(**extra_env: str) -> str:
            port = free_port()
            servers.append(start_gunicorn(port, primary.url, **extra_env))
            return f"http://127.0.0.1:{port}"

        path = reverse("dashboard:overview", kwargs={"license_id": made["public_id"]})
        history = reverse("dashboard:history_csv", kwargs={"license_id": made["public_id"]})
        dashboard_url = serve() + path  # the dashboards: no replica, as `make run` starts it
        drawn_url = serve(DASHBOARD_RENDER_CACHE="false") + path
        export_urls = {
            FROM_PRIMARY: serve() + history,
            FROM_REPLICA: serve(DATABASE_REPLICA_URL=standby.url) + history,
        }
        check_page(dashboard_url, cookies[0], made["name"])
        check_page(drawn_url, cookies[0], made["name"])
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(WRK_SCRIPT % {"cookies": ", ".join(json.dumps(c) for c in cookies)})
            script = f.name
        sampler = LagSampler(primary, standby)
        writer = writer_start(primary)
        writer_started = time.perf_counter()
        # Warm every worker and thread; this first window at the ceiling also counts as one.
        ceiling = [run_wrk(wrk, dashboard_url, script, duration, SATURATING_CONNECTIONS)]
        for connections in levels:
            runs: dict[str, list[dict]] = {kind: [] for kind in KINDS}
            lags: dict[str, list[dict]] = {kind: [] for kind in KINDS}
            rates: dict[str, list[float]] = {FROM_PRIMARY: [], FROM_REPLICA: []}
            loads = [os.getloadavg()[0]]
            for round_ in range(windows):
                for kind in KINDS[round_ % 3 :] + KINDS[: round_ % 3]:
                    with sampler.window() as lag:
                        if kind == IDLE:
                            runs[kind].append(
                                run_wrk(wrk, dashboard_url, script, duration, connections)
                            )
                        else:
                            with Exporter(export_urls[kind], cookies[-1]) as exporter:
                                time.sleep(1)  # the export is streaming before the clients start
                                runs[kind].append(
                                    run_wrk(wrk, dashboard_url, script, duration, connections)
                                )
                            rates[kind].append(exporter.mb_per_s)
                    lags[kind].append(lag.result)
                loads.append(os.getloadavg()[0])
            results[connections] = {
                **{kind: summary(runs[kind]) for kind in KINDS},
                # Each export window against the idle window of the same round, then the median.
                "p95_ratio_pairs": {
                    kind: statistics.median(
                        b["p95_ms"] / i["p95_ms"]
                        for i, b in zip(runs[IDLE], runs[kind], strict=True)
                    )
                    for kind in (FROM_PRIMARY, FROM_REPLICA)
                },
                "export_mb_per_s": {kind: statistics.median(r) for kind, r in rates.items()},
                "lag": {kind: lag_summary(lags[kind]) for kind in KINDS},
                "load": [min(loads), max(loads)],
            }
        ceiling.append(run_wrk(wrk, dashboard_url, script, duration, SATURATING_CONNECTIONS))
        records_written = writer_stop(writer)
        writer = None
        writer_seconds = time.perf_counter() - writer_started
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
        if writer is not None:
            writer_stop(writer)
        for proc in servers:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        if sampler is not None:
            sampler.close()
        if standby is not None:
            standby.close()  # made fresh each run
        primary.stop()  # kept, with its data, for the next run
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at)),
        "minutes": (time.time() - started_at) / 60,
        "windows": windows,
        "duration": duration,
        "dashboard": key,
        "export": key,
        "primary_load": made["loads"].get(key),
        "basebackup_seconds": basebackup_seconds,
        "writer": {
            "records": records_written,
            "records_per_s": records_written / writer_seconds,
        },
        "levels": results,
        "saturated": {"connections": SATURATING_CONNECTIONS, **summary([saturated])},
        "compare": {"windows": COMPARE_WINDOWS, "levels": compare, "load": compare_load},
    }
