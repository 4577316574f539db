"""7. Clever code, on and off: what each mechanism that goes past the framework's way buys,
measured side by side in one run (docs/architecture.md, "Clever code, audited").

- **Pages** (in-process, as part 1): the kept dashboard of the largest license, each round
  one request per variant in a rotating order: today's code (the license access and the
  dashboard's basis compiled once, portal/sql.py; the session and its login read by
  Django); the session's and the login's reads compiled once too (bench/audit_sessions.py);
  every query built and compiled by the ORM per request (portal.sql.COMPILE_ONCE off).
- **Garbage collector** (one process per variant, as a web worker, alternating): the usage
  explorer's year by endpoint (the page that allocates most) with the young threshold
  raised (portal/heap.py), with the loaded app also frozen out of the full collections
  (gc.freeze, which it did before), with the app frozen alone, and with Python's defaults.
- **Ingest**: a fresh license synced end to end (part 3's path), the drafts COPYed in text
  (billing/ledger/posting.py, psycopg's default) or in binary, alternating.

    python -m bench --parts audit
    BENCH_AUDIT=gc python -m bench --parts audit    # one comparison of the three
"""

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bench.setup import ROOT
from bench.stats import percentile, summary_ms

PAGE_ROUNDS = 600
GC_ROUNDS = 6
GC_REQUESTS = 150
INGEST_ROUNDS = 4
INGEST_RECORDS = 20_000
WARMUP = 20


def _compiled_sessions() -> dict[str, Any]:
    """Settings for bench.audit_sessions: the session's and the login's reads compiled once."""
    backend = "accounts.sessions.ModelBackend"
    return {
        "SESSION_ENGINE": "bench.audit_sessions",
        "AUTHENTICATION_BACKENDS": [
            "bench.audit_sessions.ModelBackend" if b == backend else b
            for b in settings.AUTHENTICATION_BACKENDS
        ],
    }


@contextmanager
def _compile_once(on: bool) -> Iterator[None]:
    import portal.sql

    before = portal.sql.COMPILE_ONCE
    portal.sql.COMPILE_ONCE = on
    try:
        yield
    finally:
        portal.sql.COMPILE_ONCE = before


# variant -> (the session's and the login's reads compiled once?, compile once?)
PAGE_VARIANTS = {
    "today": (False, True),
    "session and login compiled once too": (True, True),
    "ORM per request": (False, False),
}


def run_pages(env: dict, key: str, rounds: int = PAGE_ROUNDS) -> dict:
    license = env["licenses"][key]
    url = reverse("dashboard:overview", kwargs={"license_id": license.public_id})
    today = {
        "SESSION_ENGINE": settings.SESSION_ENGINE,
        "AUTHENTICATION_BACKENDS": list(settings.AUTHENTICATION_BACKENDS),
    }
    clients: dict[str, tuple[Client, dict, bool]] = {}
    for name, (sessions, compiled) in PAGE_VARIANTS.items():
        overrides = _compiled_sessions() if sessions else today
        # The same override around every variant's requests, so each pays the same for it.
        with override_settings(**overrides):
            client = Client()  # its handler loads the middleware of these settings
            client.force_login(env["user"])
            with _compile_once(compiled):
                for _ in range(WARMUP):
                    response = client.get(url)
                    assert response.status_code == 200, response.status_code
        clients[name] = (client, overrides, compiled)
    queries = {}
    for name, (client, overrides, compiled) in clients.items():
        with (
            override_settings(**overrides),
            _compile_once(compiled),
            CaptureQueriesContext(connection) as ctx,
        ):
            client.get(url)
        queries[name] = len(ctx.captured_queries)
    wall: dict[str, list[float]] = {name: [] for name in clients}
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    names = list(clients)
    load_before = os.getloadavg()[0]
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            client, overrides, compiled = clients[name]
            with override_settings(**overrides), _compile_once(compiled):
                started_cpu = time.process_time()
                started = time.perf_counter()
                response = client.get(url)
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - started_cpu)
            assert response.status_code == 200
    return {
        "license": key,
        "rounds": rounds,
        "load": [load_before, os.getloadavg()[0]],
        "variants": {
            name: {
                **summary_ms(wall[name]),
                "cpu_p50": summary_ms(cpu[name])["p50"],
                "cpu_p95": summary_ms(cpu[name])["p95"],
                "queries": queries[name],
            }
            for name in names
        },
    }


# variant -> (loaded app frozen by gc.freeze?, young threshold)
GC_VARIANTS = {
    "today (10,000)": (False, 10_000),
    "10,000 and the app frozen": (True, 10_000),
    "the app frozen, 700": (True, 700),
    "Python's defaults (700)": (False, 700),
}


def gc_worker(variant: str, key: str, requests: int) -> dict:
    """In a process of its own (bench.audit_worker): `requests` of the usage explorer's year
    by endpoint (the page that allocates most), with the collector set as `variant` once the
    app is loaded, as portal/wsgi.py does."""
    from django.urls import get_resolver

    from accounts.models import License, User

    get_resolver().url_patterns  # noqa: B018  the URLconf and the views, as wsgi loads them
    frozen, young = GC_VARIANTS[variant]
    gc.collect()
    if frozen:
        gc.freeze()
    gc.set_threshold(young, *gc.get_threshold()[1:])
    license = License.objects.get(key=key)
    client = Client()
    client.force_login(User.objects.get(email="bench@portal.example"))
    local_today = timezone.now().astimezone(license.tzinfo).date()
    url = reverse("dashboard:usage_explorer", kwargs={"license_id": license.public_id})
    params = {
        "from": (local_today - timedelta(days=364)).isoformat(),
        "to": local_today.isoformat(),
        "granularity": "day",
        "group_by": "endpoint",
    }
    for _ in range(WARMUP):
        assert client.get(url, params).status_code == 200
    # Each full collection's pause (a callback's start and stop).
    pauses: list[float] = []
    began = 0.0

    def pause(phase: str, info: dict) -> None:
        nonlocal began
        if info["generation"] != 2:
            return
        if phase == "start":
            began = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - began)

    gc.callbacks.append(pause)
    timings: list[float] = []
    cpu: list[float] = []
    for _ in range(requests):
        started_cpu = time.process_time()
        started = time.perf_counter()
        response = client.get(url, params)
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        assert response.status_code == 200
    gc.callbacks.remove(pause)
    return {"timings": timings, "cpu": cpu, "pauses": pauses, "frozen": gc.get_freeze_count()}


def run_gc(key: str, rounds: int = GC_ROUNDS, requests: int = GC_REQUESTS) -> dict:
    timings: dict[str, list[float]] = {v: [] for v in GC_VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in GC_VARIANTS}
    pauses: dict[str, list[float]] = {v: [] for v in GC_VARIANTS}
    frozen: dict[str, int] = {}
    names = list(GC_VARIANTS)
    load_before = os.getloadavg()[0]
    for i in range(rounds):
        for variant in names[i % len(names) :] + names[: i % len(names)]:
            out = subprocess.run(
                [sys.executable, "-m", "bench.audit_worker", variant, key, str(requests)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            timings[variant] += result["timings"]
            cpu[variant] += result["cpu"]
            pauses[variant] += result["pauses"]
            frozen[variant] = result["frozen"]
    return {
        "license": key,
        "rounds": rounds,
        "requests": requests,
        "load": [load_before, os.getloadavg()[0]],
        "variants": {
            variant: {
                **summary_ms(timings[variant]),
                "p99": percentile(timings[variant], 99) * 1000,
                "mean": statistics.mean(timings[variant]) * 1000,
                "cpu_p50": summary_ms(cpu[variant])["p50"],
                "cpu_p95": summary_ms(cpu[variant])["p95"],
                # Full collections: how many, their pauses added up, the longest.
                "full": len(pauses[variant]),
                "full_total_ms": sum(pauses[variant]) * 1000,
                "full_max_ms": max(pauses[variant], default=0) * 1000,
                "frozen_objects": frozen[variant],
            }
            for variant in names
        },
    }


def _copy_rows_binary(cursor: Any, table: Any, rows: Any) -> None:
    """billing.ledger.posting._copy_rows in binary, as it was: PostgreSQL parses no numbers or dates,
    and psycopg is told the columns' types (read here from the table's CREATE)."""
    cursor.execute(table.create_sql)
    columns = table.create_sql.split("(", 1)[1].rsplit(")", 1)[0].split(", ")
    with cursor.connection.cursor().copy(f"{table.copy_sql} (FORMAT BINARY)") as copy:
        copy.set_types([column.split()[1] for column in columns])
        for row in rows:
            copy.write_row(row)


COPY_VARIANTS = ("text (today)", "binary")


def run_ingest(rounds: int = INGEST_ROUNDS, records: int = INGEST_RECORDS) -> dict:
    import billing.ledger.posting
    import billing.ledger.usage
    from accounts.models import License
    from bench.ingest import backend_cpu, own_cpu, start_upstream
    from usage.services.sync import usage_sync_license

    text = billing.ledger.posting._copy_rows
    rates: dict[str, list[float]] = {v: [] for v in COPY_VARIANTS}
    python_ms: dict[str, list[float]] = {v: [] for v in COPY_VARIANTS}
    postgres_ms: dict[str, list[float]] = {v: [] for v in COPY_VARIANTS}
    load_before = os.getloadavg()[0]
    previous_url = settings.UPSTREAM_URL
    try:
        for i in range(rounds):
            for variant in COPY_VARIANTS if i % 2 == 0 else COPY_VARIANTS[::-1]:
                n = License.objects.filter(key__startswith="BENCH-AUDIT-").count() + 1
                license = License.objects.create(
                    key=f"BENCH-AUDIT-{n}",
                    name=f"Bench audit {n}",
                    contact_email="bench@portal.example",
                    timezone="America/New_York",
                )
                proc, url, served = start_upstream(license.key, license.timezone, records)
                settings.UPSTREAM_URL = url
                # The sync posts through billing.ledger.usage, which took the name at import.
                copy_rows = _copy_rows_binary if variant == "binary" else text
                billing.ledger.posting._copy_rows = billing.ledger.usage._copy_rows = copy_rows
                try:
                    before = (backend_cpu(), own_cpu())
                    started = time.perf_counter()
                    result = usage_sync_license(license=license, trigger="bench-audit")
                    seconds = time.perf_counter() - started
                    database = backend_cpu()
                    python = own_cpu() - before[1]
                finally:
                    billing.ledger.posting._copy_rows = billing.ledger.usage._copy_rows = text
                    proc.terminate()
                    proc.wait(timeout=10)
                assert result.complete and result.records_charged == served, result
                rates[variant].append(served / seconds)
                python_ms[variant].append(python / served * 1e6)  # per 1,000 records
                if database is not None and before[0] is not None:
                    postgres_ms[variant].append((database - before[0]) / served * 1e6)
    finally:
        settings.UPSTREAM_URL = previous_url
    return {
        "rounds": rounds,
        "records": records,
        "load": [load_before, os.getloadavg()[0]],
        "variants": {
            v: {
                "rate": statistics.median(rates[v]),
                "rates": rates[v],
                "python_ms": statistics.median(python_ms[v]),
                "postgres_ms": statistics.median(postgres_ms[v]) if postgres_ms[v] else None,
            }
            for v in COPY_VARIANTS
        },
    }


def run(env: dict, key: str, quick: bool = False) -> dict:
    """The three comparisons, or those BENCH_AUDIT names (pages, gc, ingest)."""
    wanted = os.environ.get("BENCH_AUDIT", "pages,gc,ingest").split(",")
    out: dict[str, Any] = {}
    if "pages" in wanted:
        out["pages"] = run_pages(env, key, rounds=300 if quick else PAGE_ROUNDS)
    if "gc" in wanted:
        out["gc"] = run_gc(
            key, rounds=2 if quick else GC_ROUNDS, requests=150 if quick else GC_REQUESTS
        )
    if "ingest" in wanted:
        out["ingest"] = run_ingest(rounds=2 if quick else INGEST_ROUNDS)
    return out
