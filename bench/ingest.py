"""3. Sync ingest from the simulator over HTTP into the ledger, beside a raw COPY.

A fresh license (BENCH-INGEST-n: the ledger is append-only, so every run needs one) is
synced end to end by the real service (usage_sync_license: HTTP pages, parsing, one
transaction per page with the set-based posting statement). The same records are then
COPYed as they came (one row per record, no checks, no index) into a scratch table: what
PostgreSQL can take in at best; and the ledger entries the sync made are COPYed straight
into the ledger for a twin license: the same rows against the same indexes, without the
sync's work. Then the cursor is reset and the sync replayed: it must insert nothing and
leave the ledger's size unchanged.
"""

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from bench.setup import ROOT

RECORDS = 100_000

SCRATCH_COLUMNS = (
    "id", "license", "occurred_at", "request_id", "endpoint", "status",
    "input_tokens", "cached_tokens", "completion_tokens", "images",
)  # fmt: skip
SCRATCH_TABLE = """
CREATE TABLE bench_scratch_records (
    id text, license text, occurred_at timestamptz, request_id text, endpoint text,
    status text, input_tokens bigint, cached_tokens bigint, completion_tokens bigint,
    images bigint
)
"""


def start_upstream(key: str, timezone: str, records: int) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "bench.upstream", "--license", key, "--timezone", timezone,
            "--records", str(records), "--token", settings.UPSTREAM_TOKEN,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        proc.kill()
        raise RuntimeError(f"the bench upstream did not start: {line}")
    return proc, line[1], int(line[2])


def backend_cpu() -> float | None:
    """CPU seconds this connection's PostgreSQL backend has used (None unless PostgreSQL
    runs on this machine): what the database spent, apart from what else the machine ran."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_spent(before: tuple[float | None, float]) -> dict:
    database, python = backend_cpu(), own_cpu()
    return {
        "postgres": None if database is None or before[0] is None else database - before[0],
        "python": python - before[1],
    }


def ledger_size(license) -> tuple[int, int]:
    """(entries counted in the ledger, entries according to the balance row)."""
    from billing.models import LedgerEntry, LicenseBalance

    counted = LedgerEntry.objects.for_license(license).count()
    stored = LicenseBalance.objects.for_license(license).values_list("entries", flat=True).get()
    return counted, stored


def fetch_all(key: str) -> tuple[list[dict], float]:
    """Every record, page by page as the sync asks for them: the HTTP + JSON part alone."""
    from usage.upstream import UpstreamClient

    records: list[dict] = []
    cursor = ""
    started = time.perf_counter()
    with UpstreamClient() as client:
        while True:
            page = client.usage_page(
                license_key=key, after=cursor, limit=settings.UPSTREAM_PAGE_SIZE
            )
            records.extend(page.records)
            cursor = page.next_cursor
            if not page.has_more:
                break
    return records, time.perf_counter() - started


def raw_copy(records: list[dict]) -> float:
    """COPY the records as they came into an unindexed scratch table; seconds taken."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_scratch_records")
        cursor.execute(SCRATCH_TABLE)
    rows = [tuple(r.get(c) for c in SCRATCH_COLUMNS) for r in records]
    started = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(
            f"COPY bench_scratch_records ({', '.join(SCRATCH_COLUMNS)}) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    seconds = time.perf_counter() - started  # autocommit: the COPY has committed
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bench_scratch_records")
        (copied,) = cursor.fetchone()
        cursor.execute("DROP TABLE bench_scratch_records")
    assert copied == len(records), (copied, len(records))
    return seconds


LEDGER_COLUMNS = (
    "kind", "service", "amount", "tokens", "images", "api_calls", "description",
    "occurred_at", "recorded_at", "external_id", "reason",
)  # fmt: skip


def ledger_copy(source, target) -> tuple[float, dict]:
    """COPY the entries the sync made for `source` straight into the ledger for `target`:
    the same rows against the same indexes, without fetching, checks, rollups or totals.
    Seconds and CPU taken. (The totals and rollups are rebuilt afterwards, untimed, so the bench
    database still reconciles.)"""
    from billing.ledger.rebuild import license_totals_rebuild
    from billing.models import LedgerEntry

    rows = [
        (target.pk, *row)
        for row in LedgerEntry.objects.for_license(source)
        .order_by("id")
        .values_list(*LEDGER_COLUMNS)
    ]
    cpu_before = (backend_cpu(), own_cpu())
    started = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(
            f"COPY billing_ledgerentry (license_id, {', '.join(LEDGER_COLUMNS)}) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    seconds = time.perf_counter() - started
    cpu = cpu_spent(cpu_before)
    license_totals_rebuild(license=target)
    return seconds, cpu


def run(records: int = RECORDS) -> dict:
    from accounts.models import License
    from usage.models import SyncState
    from usage.services.sync import usage_sync_license

    n = (
        License.objects.filter(key__startswith="BENCH-INGEST-")
        .exclude(key__endswith="-COPY")
        .count()
        + 1
    )
    license = License.objects.create(
        key=f"BENCH-INGEST-{n}",
        name=f"Bench ingest {n}",
        contact_email="bench@portal.example",
        timezone="America/New_York",
    )
    proc, url, served = start_upstream(license.key, license.timezone, records)
    previous_url = settings.UPSTREAM_URL
    settings.UPSTREAM_URL = url
    try:
        load_before = os.getloadavg()[0]
        cpu_before = (backend_cpu(), own_cpu())
        started = time.perf_counter()
        result = usage_sync_license(license=license, trigger="bench")
        sync_seconds = time.perf_counter() - started
        sync_cpu = cpu_spent(cpu_before)
        assert result.complete and not result.error, result
        assert result.records_charged == served == result.records_received, result
        entries, stored = ledger_size(license)
        assert entries == stored, (entries, stored)

        fetched, fetch_seconds = fetch_all(license.key)
        assert len(fetched) == served
        copy_seconds = raw_copy(fetched)
        twin = License.objects.create(
            key=f"{license.key}-COPY",
            name=f"{license.name} (COPY)",
            contact_email="bench@portal.example",
            timezone=license.timezone,
        )
        ledger_copy_seconds, ledger_copy_cpu = ledger_copy(license, twin)

        # Replay: the same records from the start again.
        SyncState.objects.for_license(license).update(cursor="")
        started = time.perf_counter()
        replay = usage_sync_license(license=license, trigger="bench-replay")
        replay_seconds = time.perf_counter() - started
        after = ledger_size(license)
        load_after = os.getloadavg()[0]
    finally:
        settings.UPSTREAM_URL = previous_url
        proc.terminate()
        proc.wait(timeout=10)
    return {
        "license": license.key,
        "records": served,
        "entries": entries,
        "pages": result.pages,
        "page_size": settings.UPSTREAM_PAGE_SIZE,
        "sync_seconds": sync_seconds,
        "sync_rate": served / sync_seconds,
        "fetch_seconds": fetch_seconds,
        "fetch_rate": served / fetch_seconds,
        "copy_seconds": copy_seconds,
        "copy_rate": served / copy_seconds,
        "ledger_copy_seconds": ledger_copy_seconds,
        "ledger_copy_rate": served / ledger_copy_seconds,
        # CPU seconds, PostgreSQL's backend and this process (the sync's two threads; the
        # simulator runs in its own process): apart from what else the machine ran.
        "sync_cpu": sync_cpu,
        "ledger_copy_cpu": ledger_copy_cpu,
        "load": (load_before, load_after),
        "replay_seconds": replay_seconds,
        "replay_rate": served / replay_seconds,
        "replay_charged": replay.records_charged,
        "replay_duplicates": replay.records_duplicate,
        "entries_before_replay": entries,
        "entries_after_replay": after[0],
        "stored_after_replay": after[1],
    }
