"""8. Real time (issue 27): usage pushed in, the gate, and the drawn dashboard, all served by
one gunicorn as `make run` starts it (bench/web.py's start_gunicorn: 2 gthread workers of 4
threads, DEBUG off), against the bench database, with the render cache off
(DASHBOARD_RENDER_CACHE=false: every dashboard is drawn, as when ledgers change every second).

(a) Push: PUSH_CLIENTS threads each POST /ingest/v1/usage batches of 1,000 fresh records,
    alternating between two licenses of their own, for PUSH_SECONDS. After each answer the
    client reads the license's balance through the customer API (GET /api/v1/licenses/{id}/
    balance, an API key) and checks that its `api_calls` count every record accepted so far:
    freshness is the time from sending the batch to that read's answer (the push posts
    synchronously, so what is accepted is committed). Beside it, in the same run, the
    ledger's own COPY floor (bench/ingest.py's ledger_copy: one license's entries COPYed
    straight into a twin's ledger) and Lago's published 10 k events/s.
(b) Gate: wrk drives POST /gate/v1/authorize (a unique request id each, a $0.000001
    estimate, round-robin over GATE_LICENSES licenses with a floor far below zero so every
    answer is an allowed hold) at 1, 4 and 8 connections, beside GET /healthz at the same
    number of connections: GATE_ROUNDS windows each, alternating which goes first, the
    median window's p99 kept.
(c) Drawn dashboard ÷ login page: one client alternates the two (a logged-in session for the
    dashboard, none for the login page), DASHBOARD_ROUNDS each, p50/p95 of the wall time;
    once as the ledger's statistics are after the push, once after the statistics refresh
    the beat runs (billing.ledger.statistics).
"""

import http.client
import json
import os
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection

from bench.setup import BENCH_DATABASE_URL
from bench.stats import percentile, summary_ms
from bench.web import ensure_wrk, free_port, run_wrk, session_cookies, start_gunicorn

PUSH_CLIENTS = 2
PUSH_SECONDS = 20
BATCH = 1000
GATE_LEVELS = (1, 4, 8)
GATE_SECONDS = 3
# Windows per side at each number of connections, alternating which goes first: the median
# window's p99 stands, so one stall of the shared machine does not decide the goal.
GATE_ROUNDS = 3
GATE_LICENSES = 4
DASHBOARD_ROUNDS = 100
# Lago's published ingestion rate on PostgreSQL alone (issue 27; Lago's own
# documentation and blog on its event-processing pipeline).
LAGO_EVENTS_PER_S = 10_000
FRESHNESS_GOAL_S = 2.0

GATE_SCRIPT = """
local keys = {%(keys)s}
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"license": "%%s", "estimate": "0.000001", "request_id": "%(prefix)s-%%d"}',
    keys[(n %% #keys) + 1], n)
  return wrk.format("POST", wrk.path, {
    ["Authorization"] = "Bearer %(token)s", ["Content-Type"] = "application/json"}, body)
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

PLAIN_SCRIPT = "done = " + GATE_SCRIPT.split("done = ", 1)[1]


def licenses_make(prefix: str, count: int) -> list:
    from accounts.models import License

    n = License.objects.filter(key__startswith=prefix).count()
    return [
        License.objects.create(
            key=f"{prefix}{n + i + 1}",
            name=f"Bench realtime {n + i + 1}",
            contact_email="bench@portal.example",
            timezone="America/New_York",
        )
        for i in range(count)
    ]


def batch_body(key: str, run: str, batch: int) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    records = [
        {
            "id": f"rt{run}_{key}_{batch}_{i}",
            "license": key,
            "occurred_at": now,
            "request_id": f"req_{run}_{batch}_{i}",
            "endpoint": "/v1/chat/completions",
            "status": "success",
            "input_tokens": 1000 + i,
            "cached_tokens": 200 if i % 10 == 0 else 0,
            "completion_tokens": 300,
            "images": 0,
        }
        for i in range(BATCH)
    ]
    return json.dumps({"records": records}).encode()


class Pusher(threading.Thread):
    """POSTs batches for its licenses until `stop`, reading each license's balance after each
    answer: sent → visible, and the records accepted."""

    def __init__(self, port: int, token: str, licenses: list, api_keys: dict, stop, run: str):
        super().__init__(daemon=True)
        self.port, self.token, self.licenses, self.api_keys = port, token, licenses, api_keys
        self.stop, self.run_id = stop, run
        self.accepted = 0
        self.post_seconds: list[float] = []
        self.fresh_seconds: list[float] = []  # sent → the balance read shows it
        self.after_answer_seconds: list[float] = []  # answer → the balance read shows it
        self.error: str | None = None

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        counted = {lic.key: 0 for lic in self.licenses}
        batch = 0
        try:
            while not self.stop.is_set():
                license = self.licenses[batch % len(self.licenses)]
                body = batch_body(license.key, self.run_id, batch)
                batch += 1
                sent = time.perf_counter()
                conn.request(
                    "POST",
                    "/ingest/v1/usage",
                    body,
                    {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
                )
                response = conn.getresponse()
                answer = json.loads(response.read())
                answered = time.perf_counter()
                if response.status != 200 or answer["accepted"] != BATCH:
                    raise RuntimeError(f"push answered {response.status}: {str(answer)[:300]}")
                counted[license.key] += BATCH
                self.accepted += BATCH
                conn.request(
                    "GET",
                    f"/api/v1/licenses/{license.public_id}/balance",
                    headers={"Authorization": f"Bearer {self.api_keys[license.key]}"},
                )
                response = conn.getresponse()
                balance = json.loads(response.read())
                seen = time.perf_counter()
                if response.status != 200 or balance["api_calls"] < counted[license.key]:
                    raise RuntimeError(
                        f"the balance does not show the push: {response.status} "
                        f"{balance.get('api_calls')} < {counted[license.key]}"
                    )
                self.post_seconds.append(answered - sent)
                self.fresh_seconds.append(seen - sent)
                self.after_answer_seconds.append(seen - answered)
        except Exception as exc:  # reported, and the run says so
            self.error = repr(exc)
        finally:
            conn.close()


def push_run(port: int, token: str, seconds: float, clients: int) -> dict:
    from api.services import api_key_create
    from bench.ingest import ledger_copy, ledger_size

    licenses = licenses_make("BENCH-RT-PUSH-", 2 * clients)
    api_keys = {
        lic.key: api_key_create(acting_user=None, license=lic, name="bench realtime")[1]
        for lic in licenses
    }
    run = uuid.uuid4().hex[:8]
    stop = threading.Event()
    pushers = [
        Pusher(port, token, licenses[2 * i : 2 * i + 2], api_keys, stop, run)
        for i in range(clients)
    ]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    for p in pushers:
        p.start()
    time.sleep(seconds)
    stop.set()
    for p in pushers:
        p.join(timeout=120)
    wall = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    errors = [p.error for p in pushers if p.error]
    accepted = sum(p.accepted for p in pushers)
    fresh = [s for p in pushers for s in p.fresh_seconds]
    posts = [s for p in pushers for s in p.post_seconds]
    after = [s for p in pushers for s in p.after_answer_seconds]

    # The floor: the first license's entries COPYed straight into a twin's ledger.
    source = licenses[0]
    entries, stored = ledger_size(source)
    records = entries_records(source)
    (twin,) = licenses_make("BENCH-RT-COPY-", 1)
    copy_seconds, copy_cpu = ledger_copy(source, twin)
    return {
        "clients": clients,
        "batch": BATCH,
        "licenses": len(licenses),
        "seconds": wall,
        "accepted": accepted,
        "rate": accepted / wall,
        "batches": len(posts),
        "post": summary_ms(posts) | {"p99": percentile([s * 1000 for s in posts], 99)},
        "fresh": summary_ms(fresh) | {"p99": percentile([s * 1000 for s in fresh], 99)},
        "after_answer": summary_ms(after) | {"p99": percentile([s * 1000 for s in after], 99)},
        "errors": errors,
        "entries_per_record": entries / records if records else None,
        "entries_counted": entries,
        "entries_stored": stored,
        "floor_records": records,
        "floor_seconds": copy_seconds,
        "floor_rate": records / copy_seconds,
        "floor_cpu": copy_cpu,
        "load": (load_before, load_after),
    }


def entries_records(license) -> int:
    """How many records (API calls) the license's ledger holds."""
    from billing.models import LicenseBalance

    return (
        LicenseBalance.objects.for_license(license).values_list("api_calls", flat=True).get() or 0
    )


GATE_PATH = "/gate/v1/authorize"


def median_window(runs: list[dict]) -> dict:
    """The window of median p99, with every window's rate and p99 and the errors of all."""
    ordered = sorted(runs, key=lambda r: r["p99_ms"])
    middle = dict(ordered[len(ordered) // 2])
    middle["p99s_ms"] = [r["p99_ms"] for r in runs]
    middle["rates"] = [r["rps"] for r in runs]
    middle["status_errors"] = sum(r["status_errors"] for r in runs)
    middle["socket_errors"] = sum(r["socket_errors"] for r in runs)
    return middle


def gate_run(
    wrk: str, base: str, token: str, seconds: int, levels: tuple[int, ...], rounds: int
) -> dict:
    from billing.limits.models import SpendLimit

    licenses = licenses_make("BENCH-RT-GATE-", GATE_LICENSES)
    for lic in licenses:
        # Far below zero: every authorization is an allowed hold, none refused for credit.
        SpendLimit.objects.create(
            license=lic, floor=Decimal("-1000000"), overdraft_approved=Decimal("1000000")
        )
    keys = ", ".join(json.dumps(lic.key) for lic in licenses)
    prefix = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, "plain.lua")
        with open(plain, "w") as f:
            f.write(PLAIN_SCRIPT % {})
        results: dict[int, dict] = {}
        loads = [os.getloadavg()[0]]
        for level in levels:
            gate = os.path.join(tmp, f"gate-{level}.lua")
            with open(gate, "w") as f:
                f.write(GATE_SCRIPT % {"keys": keys, "prefix": f"{prefix}-{level}", "token": token})
            windows: dict[str, list[dict]] = {"healthz": [], "gate": []}
            for round_ in range(rounds):
                sides = [("healthz", base + "/healthz", plain), ("gate", base + GATE_PATH, gate)]
                for side, url, script in sides if round_ % 2 == 0 else sides[::-1]:
                    windows[side].append(run_wrk(wrk, url, script, seconds, level))
            results[level] = {side: median_window(runs) for side, runs in windows.items()}
            loads.append(os.getloadavg()[0])
    allowed = sample_authorize(base, token, licenses[0].key)
    return {
        "levels": results,
        "load": loads,
        "sample": allowed,
        "licenses": len(licenses),
        "rounds": rounds,
        "seconds": seconds,
    }


def sample_authorize(base: str, token: str, key: str) -> dict:
    """One authorization after the windows: the gate still allows (nothing was refused)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps(
        {"license": key, "estimate": "0.000001", "request_id": f"sample-{uuid.uuid4().hex}"}
    )
    conn.request(
        "POST",
        "/gate/v1/authorize",
        body,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()
    return {"status": response.status, "allow": answer.get("allow"), "reason": answer.get("reason")}


def dashboard_run(port: int, cookie: str, path: str, rounds: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    timings: dict[str, list[float]] = {"login": [], "drawn": []}
    load_before = os.getloadavg()[0]
    for i in range(rounds + 5):
        order = ("login", "drawn") if i % 2 else ("drawn", "login")
        for page in order:
            headers = {"Cookie": cookie} if page == "drawn" else {}
            url = path if page == "drawn" else "/accounts/login/"
            started = time.perf_counter()
            conn.request("GET", url, headers=headers)
            response = conn.getresponse()
            response.read()
            seconds = time.perf_counter() - started
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status}")
            if i >= 5:  # the first rounds warm the workers' threads
                timings[page].append(seconds)
    conn.close()
    return {
        "login": summary_ms(timings["login"]),
        "drawn": summary_ms(timings["drawn"]),
        "load": (load_before, os.getloadavg()[0]),
    }


def run(
    env: dict,
    key: str,
    *,
    push_seconds: float = PUSH_SECONDS,
    push_clients: int = PUSH_CLIENTS,
    gate_seconds: int = GATE_SECONDS,
    gate_rounds: int = GATE_ROUNDS,
    gate_levels: tuple[int, ...] = GATE_LEVELS,
    dashboard_rounds: int = DASHBOARD_ROUNDS,
) -> dict:
    from django.urls import reverse

    from billing.ledger.statistics import ledger_statistics_refresh
    from provider.services import service_token_create

    wrk = ensure_wrk()
    if wrk is None:
        return {"skipped": "wrk is not installed and apt-get could not install it"}
    _, token = service_token_create(acting_user=None, name="bench realtime")
    port = free_port()
    server = start_gunicorn(port, BENCH_DATABASE_URL, DASHBOARD_RENDER_CACHE="false")
    try:
        push = push_run(port, token, push_seconds, push_clients)
        gate = gate_run(
            wrk, f"http://127.0.0.1:{port}", token, gate_seconds, gate_levels, gate_rounds
        )
        license = env["licenses"][key]
        path = reverse("dashboard:overview", kwargs={"license_id": license.public_id})
        (cookie,) = session_cookies(env["user"], 1)
        # As found (the push's entries have just more than doubled the ledger since the
        # last ANALYZE: PostgreSQL runs with autovacuum off here), then after the statistics
        # refresh the beat runs every ten minutes (billing.ledger.statistics).
        stats = ledger_statistics()
        dashboard = dashboard_run(port, cookie, path, dashboard_rounds)
        stats["refreshed"] = ledger_statistics_refresh()
        analyzed = dashboard_run(port, cookie, path, dashboard_rounds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "push": push,
        "gate": gate,
        "dashboard": dashboard | {"license": key, "statistics": stats, "analyzed": analyzed},
    }


def ledger_statistics() -> dict:
    """The ledger's rows now, and what the planner's statistics last counted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.reltuples::bigint, s.n_live_tup, s.last_analyze, s.last_autoanalyze "
            "FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid "
            "WHERE c.relname = 'billing_ledgerentry'"
        )
        planned, live, manual, auto = cursor.fetchone()
    return {"planned_rows": planned, "live_rows": live, "analyzed_at": manual or auto}
