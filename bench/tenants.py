"""5. Tenants: one beat cycle end to end at 1 K, 10 K and 100 K licenses, most idle.

For each size, every license was synced five minutes ago; since then a few percent of them
made calls (the upstream simulator, `bench.tenants_upstream`, in its own process) and the
others made none. One beat runs `usage.sync_all_licenses` here (it reads the upstream's
feed and enqueues the syncs) and a real Celery worker with WORKERS processes syncs them.
Measured: the fan-out's time and queries, syncs per second per worker process, how long
until every license is current (its usage complete as of the cycle's start) and until the
last sync is done, and the database connections held meanwhile. Beside it, at the smaller
sizes, the design it replaces: every license polled (the fan-out's fallback while the feed
fails), which gives what one idle license costs when it is asked.

Its own database (BENCH_TENANTS_DATABASE_URL, default portal_bench_tenants), so it never
touches the other parts' bench database. The licenses are created once and kept; each
size's run marks the licenses beyond it closed.

    python -m bench --parts tenants --update     # this part only, into docs/benchmarks.md
"""

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.setup import ROOT

BENCH_TENANTS_DATABASE_URL = os.environ.get(
    "BENCH_TENANTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_tenants"
)
SIZES = (1_000, 10_000, 100_000)
ACTIVE_SHARE = 0.03  # licenses with new usage in a cycle
RECORDS_PER_ACTIVE = 20  # their calls in the five minutes
WORKERS = 4  # worker processes: the goal's limit on this machine
# The per-license polling design, for comparison: its cost per idle license is measured at
# 1 K and projected beyond (polling 10 K took 9 minutes of the run and cost the same per license).
FULL_POLL_SIZES = (1_000,)
CYCLE_SECONDS = 300
PREFIX = "TEN"
TOKEN = secrets.token_hex(12)  # the simulator's, handed to the worker


def run(sizes: tuple[int, ...] = SIZES, *, full_poll_sizes: tuple[int, ...] = FULL_POLL_SIZES):
    """The measurements, from a child process on the tenants' own database."""
    env = {
        **os.environ,
        "DATABASE_URL": BENCH_TENANTS_DATABASE_URL,
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
    }
    args = [
        sys.executable,
        "-m",
        "bench.tenants",
        "--child",
        "--sizes",
        ",".join(str(s) for s in sizes),
        "--full-poll",
        ",".join(str(s) for s in full_poll_sizes),
    ]
    out = subprocess.run(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False, timeout=3 * 3600
    )
    if out.returncode != 0:
        raise RuntimeError("tenants bench failed (its output is above)")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the child: everything below runs against the tenants database ------------------------


def _child(sizes: list[int], full_poll_sizes: list[int]) -> dict:
    os.environ["DATABASE_URL"] = BENCH_TENANTS_DATABASE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("preflight", "--create-database")
    call_command("migrate", verbosity=0)
    _licenses_ensure(max(sizes))
    results: dict = {
        "workers": WORKERS,
        "active_share": ACTIVE_SHARE,
        "records_per_active": RECORDS_PER_ACTIVE,
        "cycle_seconds": CYCLE_SECONDS,
        "sizes": {},
    }
    for size in sizes:
        results["sizes"][str(size)] = _size_run(size, full_poll=size in full_poll_sizes)
    return results


def log(message: str) -> None:
    print(f"   tenants: {message}", file=sys.stderr, flush=True)


def _licenses_ensure(count: int) -> None:
    from accounts.models import License
    from bench.tenants_upstream import license_key

    have = License.objects.filter(key__startswith=f"{PREFIX}-").count()
    if have >= count:
        return
    log(f"creating {count - have:,} licenses …")
    License.objects.bulk_create(
        [
            License(
                key=license_key(PREFIX, n),
                name=f"Tenant {n}",
                contact_email=f"billing{n}@tenant.example",
                timezone="UTC",
                low_balance_threshold=0,
            )
            for n in range(have + 1, count + 1)
        ],
        batch_size=5000,
    )


def _state_reset(size: int, *, sim_now: datetime, synced_at: datetime) -> None:
    """Licenses 1 … size active (the rest closed), each synced at `synced_at` with its
    cursor at the start of its (new) stream; the feed read up to five minutes before
    the simulator's clock."""
    from django.db import connection

    from accounts.models import License
    from bench.tenants_upstream import WINDOW, license_key
    from usage.models import SyncFeed, SyncState
    from usage.selectors import FEED
    from usage.simulator.core import encode_feed_cursor
    from usage.simulator.generator import to_us

    last = license_key(PREFIX, size)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_license SET status = CASE WHEN key <= %s THEN 'active' "
            "ELSE 'closed' END WHERE key LIKE %s",
            [last, f"{PREFIX}-%"],
        )
    ids = License.objects.filter(key__startswith=f"{PREFIX}-", key__lte=last).values_list(
        "pk", flat=True
    )
    SyncState.objects.bulk_create(
        [SyncState(license_id=pk) for pk in ids], ignore_conflicts=True, batch_size=5000
    )
    SyncState.objects.filter(license__key__startswith=f"{PREFIX}-").update(
        cursor="",
        last_success_at=synced_at,
        last_attempt_at=synced_at,
        owed_since=None,
        consecutive_failures=0,
        last_error="",
    )
    SyncFeed.objects.update_or_create(
        name=FEED,
        defaults={
            "cursor": encode_feed_cursor((to_us(sim_now - WINDOW), "~")),
            "confirmed_at": synced_at,
            "last_error": "",
            "sweep_after_id": 0,
        },
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_license; ANALYZE usage_syncstate")


class _Upstream:
    def __init__(self, *, size: int, active: int, sim_now: datetime, seed: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.tenants_upstream", "--prefix", PREFIX,
             "--licenses", str(size), "--active", str(active),
             "--records", str(RECORDS_PER_ACTIVE), "--now", sim_now.isoformat(),
             "--seed", str(seed), "--token", TOKEN],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline().split() if self.proc.stdout else []
        if not line or line[0] != "ready":
            self.stop()
            raise RuntimeError("the tenants simulator did not start")
        self.url, self.records = line[1], int(line[2])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class _Worker:
    """A real Celery worker with WORKERS processes (prefork) on a queue of its own."""

    def __init__(self, *, upstream_url: str, queue: str):
        env = {
            **os.environ,
            "DATABASE_URL": BENCH_TENANTS_DATABASE_URL,
            "UPSTREAM_URL": upstream_url,
            "UPSTREAM_TOKEN": TOKEN,
            "LOG_LEVEL": "WARNING",
        }
        self.log = open(ROOT / "bench" / "data" / "tenants-worker.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "celery"), "-A", "portal", "worker", "-Q", queue,
             "--pool", "prefork", "--concurrency", str(WORKERS), "--loglevel", "WARNING",
             "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


class _ConnectionSampler(threading.Thread):
    """The most backends connected to the tenants database at once, this process's own
    two (the bench and this sampler) left out."""

    def __init__(self, main_pid: int):
        super().__init__(daemon=True)
        self.main_pid = main_pid
        self.most = 0
        self.running = True

    def run(self) -> None:
        import psycopg

        with psycopg.connect(BENCH_TENANTS_DATABASE_URL, autocommit=True) as conn:
            while self.running:
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND pid <> %s",
                    [self.main_pid],
                ).fetchone() or (0,)
                self.most = max(self.most, count)
                time.sleep(0.1)


def _wait(condition, *, timeout: float, poll: float = 0.2) -> float | None:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if condition():
            return time.perf_counter() - started
        time.sleep(poll)
    return None


def _size_run(size: int, *, full_poll: bool) -> dict:
    from django.conf import settings
    from django.db import connection
    from django.db.models import Max, Sum
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from accounts.models import License
    from portal.celery import app
    from portal.tasks import ping
    from usage.models import SyncState
    from usage.selectors import license_ids_to_sync, sync_feed_get
    from usage.tasks import usage_sync_all_licenses, usage_syncs_enqueue

    active = max(1, round(size * ACTIVE_SHARE))
    sim_now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    log(f"{size:,} licenses ({active:,} active): preparing …")
    _state_reset(size, sim_now=sim_now, synced_at=timezone.now() - timedelta(minutes=5))
    upstream = _Upstream(size=size, active=active, sim_now=sim_now, seed=size + int(time.time()))
    queue = f"bench-tenants-{uuid.uuid4().hex[:8]}"
    worker = _Worker(upstream_url=upstream.url, queue=queue)
    ours = SyncState.objects.filter(license__status=License.Status.ACTIVE)
    try:
        for _ in range(WORKERS):  # every worker process up and connected
            ping.apply_async(queue=queue).get(timeout=120)
        connection.ensure_connection()
        sampler = _ConnectionSampler(connection.connection.info.backend_pid)
        sampler.start()
        charged_before = ours.aggregate(n=Sum("records_charged"))["n"] or 0

        # One beat: the fan-out runs here (its enqueues go to the worker's queue).
        log(f"{size:,}: one beat cycle …")
        app.conf.task_default_queue = queue
        settings.UPSTREAM_URL, settings.UPSTREAM_TOKEN = upstream.url, TOKEN
        cycle_start = timezone.now()
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            enqueued = usage_sync_all_licenses.apply().get()
        fan_out = time.perf_counter() - started
        confirmed_at = sync_feed_get().confirmed_at

        def lagging() -> int:
            return ours.lagging(cycle_start, confirmed_at).count()

        # From the beat's start: when every license is current (its usage complete as of
        # then). Celery beat would run the fan-out again after a cycle; so does this, for
        # licenses whose syncs expired in the queue (they are still owed). Polled once a
        # second: the poll is a scan of every license, which the workers must not feel.
        until_current = lagging_after_cycle = None
        beats = 1
        while until_current is None and time.perf_counter() - started < 3 * CYCLE_SECONDS:
            left = lagging()
            elapsed = time.perf_counter() - started
            if left == 0:
                until_current = elapsed
            elif elapsed >= beats * CYCLE_SECONDS:
                if lagging_after_cycle is None:
                    lagging_after_cycle = left
                log(f"{size:,}: {left:,} licenses not current after {elapsed:.0f} s: next beat")
                usage_sync_all_licenses.apply().get()
                beats += 1
            time.sleep(1.0)
        synced = ours.filter(last_success_at__gte=cycle_start)
        last_done = synced.aggregate(last=Max("last_success_at"))["last"]
        syncs_done = synced.count()
        until_done = (last_done - cycle_start).total_seconds() if last_done else None
        charged = (ours.aggregate(n=Sum("records_charged"))["n"] or 0) - charged_before
        result = {
            "licenses": size,
            "active": active,
            "records_upstream": upstream.records,
            "records_charged": charged,
            "fan_out_seconds": fan_out,
            "fan_out_queries": len(queries),
            "enqueued": enqueued,
            "until_current_seconds": until_current,
            "until_done_seconds": until_done,
            "beats": beats,
            "lagging_after_one_cycle": lagging_after_cycle or 0,
            "lagging_left": lagging(),
            "syncs_done": syncs_done,
            "syncs_per_second_per_worker": (
                syncs_done / (until_done - fan_out) / WORKERS
                if until_done and until_done > fan_out
                else None
            ),
            "connections_max": sampler.most,
        }
        log(f"{size:,}: {json.dumps(result)}")

        if full_poll:
            # The design it replaces: every license asked (the fallback while the feed
            # fails). Nothing is new upstream now, so every sync is an idle license's cost.
            log(f"{size:,}: polling every license …")
            poll_start = timezone.now()
            started = time.perf_counter()
            ids = license_ids_to_sync()
            # No expiry: the bench waits for every poll, however long the queue.
            usage_syncs_enqueue(ids, queue=queue, expires=None)
            enqueue_seconds = time.perf_counter() - started
            polled = _wait(
                lambda: ours.filter(last_success_at__gte=poll_start).count() >= len(ids),
                timeout=1800,
                poll=0.5,
            )
            total = None if polled is None else enqueue_seconds + polled
            result["full_poll"] = {
                "licenses": len(ids),
                "enqueue_seconds": enqueue_seconds,
                "seconds": total,
                # Worker-process seconds one idle license costs when it is polled.
                "idle_license_ms": (total * WORKERS / len(ids) * 1000) if total else None,
            }
            log(f"{size:,}: full poll {json.dumps(result['full_poll'])}")
        sampler.running = False
        result["connections_max"] = sampler.most
        return result
    finally:
        worker.stop()
        upstream.stop()


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--full-poll", default=",".join(str(s) for s in FULL_POLL_SIZES))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    full = [int(s) for s in args.full_poll.split(",") if s]
    if not args.child:
        print(json.dumps(run(tuple(sizes), full_poll_sizes=tuple(full)), indent=1))
        return
    (ROOT / "bench" / "data").mkdir(exist_ok=True)
    print(json.dumps(_child(sizes, full)))


if __name__ == "__main__":
    main()
