"""The fault suite: the sync keeps the ledger exact through the faults a deployment meets.

Each test breaks something real while a sync runs: it kills a Celery worker (SIGKILL),
restarts PostgreSQL (a private cluster), stops Redis (a private redis-server) or makes the
upstream fail and then recover. After each, the next run finishes the work and
`reconcile_ledger` is clean and the ledger equals the simulator's own summary: nothing
lost, nothing charged twice. Run alone with `pytest -m faults`.
"""

import io
import json
import subprocess
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from portal.tasks import ping
from tests.ledger import assert_ledger_matches_upstream, cursor_of, ledger_charges
from tests.processes import NOW, PYTHON, ROOT, child_env, manage, profile_for, wait_for
from tests.services import (
    PrivatePostgres,
    PrivateRedis,
    migrated_private_postgres,
    private_child,
    redis_at,
    wait_until_blocked_by,
)
from usage.models import SyncState
from usage.services.sync import usage_sync_license
from usage.simulator import Faults, LicenseProfile
from usage.simulator.core import decode_cursor
from usage.tasks import usage_sync_license_task
from usage.upstream import upstream_summary

pytestmark = pytest.mark.faults

MONTHS = sorted({f"{NOW - timedelta(days=d):%Y-%m}" for d in range(4)})


def assert_reconciles(*, env: dict | None = None) -> None:
    """`reconcile_ledger` exits 0 for every month the test's usage touches."""
    for month in MONTHS:
        if env is None:
            out = io.StringIO()
            try:
                call_command("reconcile_ledger", month=month, stdout=out)
            except CommandError as exc:
                raise AssertionError(f"reconcile_ledger {month}: {exc}\n{out.getvalue()}") from exc
            assert "reconcile with the ledger" in out.getvalue()
        else:
            result = manage("reconcile_ledger", "--month", month, env=env)
            assert result.returncode == 0, result.stdout + result.stderr


def committed_prefix_is_exact(server, license_key: str, cursor: str, charged: set[str]) -> None:
    """What is charged is exactly the stream up to the committed cursor: no half page."""
    stream = server.simulator.streams[license_key]
    served = {r.body["id"] for r in stream.records if r.stream_key <= decode_cursor(cursor)}
    assert charged == served


# --- a worker killed mid-sync ----------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_sync_the_next_run_completes_it_exactly_once(
    start_simulator, license_a, settings, start_worker
):
    server = start_simulator(
        profiles=[profile_for(license_a, days=2)], faults=Faults(latency_ms=150, repeat_share=0.3)
    )
    env = child_env(settings=settings, UPSTREAM_PAGE_SIZE="40")
    first = start_worker(env)
    usage_sync_license_task.apply_async(args=[license_a.pk], kwargs={"trigger": "beat"},
                                        queue=first.queue)  # fmt: skip
    wait_for(lambda: cursor_of(license_a), timeout=60, message="the worker's first page")
    first.kill()

    cursor = cursor_of(license_a)
    charged = {external_id.rsplit(":", 1)[0] for external_id, *_ in ledger_charges(license_a)}
    committed_prefix_is_exact(server, license_a.key, cursor, charged)
    summary = upstream_summary(license_key=license_a.key)
    assert 0 < len(charged) < summary["records"], "killed mid-sync, not before or after"

    # The next run (the next beat's task, taken by a fresh worker) finishes the job; the
    # killed worker's session lock went with its connection, so it is not turned away.
    second = start_worker(env, queue=first.queue)
    outcome = wait_for(
        lambda: (
            r := usage_sync_license_task.apply_async(
                args=[license_a.pk], kwargs={"trigger": "beat"}, queue=second.queue
            ).get(timeout=90)
        )["ran"] and r,
        timeout=120,
        message="a run that is not turned away",
    )  # fmt: skip
    assert outcome["complete"] and outcome["error"] == ""
    assert_ledger_matches_upstream(license_a, summary)
    assert_reconciles()


# --- PostgreSQL restarted mid-sync -----------------------------------------------------


@pytest.fixture(scope="module")
def private_postgres():
    yield from migrated_private_postgres()


def private_sync_state(cluster: PrivatePostgres, key: str) -> tuple[str, set[str]]:
    """(committed cursor, ids of the records charged) in the private cluster."""
    with cluster.connect() as conn:
        row = conn.execute(
            "SELECT s.cursor FROM usage_syncstate s JOIN accounts_license l ON l.id = s.license_id"
            " WHERE l.key = %s",
            [key],
        ).fetchone()
        ids = conn.execute(
            "SELECT e.external_id FROM billing_ledgerentry e JOIN accounts_license l"
            " ON l.id = e.license_id WHERE l.key = %s AND e.kind = 'usage'",
            [key],
        ).fetchall()
    return (row[0] if row else ""), {external_id.rsplit(":", 1)[0] for (external_id,) in ids}


@pytest.mark.django_db
def test_postgres_restarted_mid_sync_leaves_no_half_page_and_the_rerun_completes_it_once(
    private_postgres, start_simulator
):
    key = "PGRESTART-001"
    private_child(private_postgres, "license_create", key, "America/New_York")
    profile = LicenseProfile(
        key=key, timezone="America/New_York", history_start=NOW - timedelta(days=2),
        weekday_calls=400, ramp_days=0,
    )  # fmt: skip
    server = start_simulator(profiles=[profile], faults=Faults(latency_ms=60, repeat_share=0.3))
    env = child_env(
        private_postgres.url,
        UPSTREAM_URL=server.url,
        UPSTREAM_PAGE_SIZE="40",
        UPSTREAM_BACKOFF_SECONDS="0.01",
    )
    sync = subprocess.Popen(
        [PYTHON, "manage.py", "sync_usage", "--license", key], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: private_sync_state(private_postgres, key)[0], message="a first page")
        # Hold the license's sync-state row: the sync's next page transaction has inserted
        # its ledger entries and waits here to move the cursor. Then the server goes away.
        holder = private_postgres.connect()
        holder.execute(
            "SELECT 1 FROM usage_syncstate s JOIN accounts_license l ON l.id = s.license_id"
            " WHERE l.key = %s FOR UPDATE OF s",
            [key],
        )
        with private_postgres.connect(autocommit=True) as watcher:
            wait_until_blocked_by(watcher, holder, message="the sync to wait on its cursor")
        private_postgres.restart()
        holder.close()
    finally:
        output = sync.communicate(timeout=60)[0].decode()
    assert sync.returncode != 0, output  # the sync saw the database go away

    cursor, charged = private_sync_state(private_postgres, key)
    committed_prefix_is_exact(server, key, cursor, charged)
    summary = server.simulator.summary(key=key)
    assert 0 < len(charged) < summary["records"]

    again = manage("sync_usage", "--license", key, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "complete" in again.stdout
    private_child(private_postgres, "ledger_check", key, json.dumps(summary))
    assert_reconciles(env=env)


# --- Redis stopped under a running worker ----------------------------------------------


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_redis_stopped_pages_keep_working_and_syncs_catch_up_when_it_is_back(
    start_simulator, license_a, client_a, settings, start_worker, private_redis
):
    settings.UPSTREAM_PAGE_SIZE = 20
    # About 40 pages of 60 ms: the first page fits the budget even on a busy machine.
    settings.USAGE_REFRESH_BUDGET_SECONDS = 1.0
    settings.USAGE_REFRESH_INTERVAL_SECONDS = 0
    start_simulator(profiles=[profile_for(license_a, days=2)], faults=Faults(latency_ms=60))
    env = child_env(
        settings=settings,
        UPSTREAM_PAGE_SIZE="20",
        REDIS_URL=private_redis.url,
        CELERY_BROKER_URL=private_redis.url,
        CELERY_RESULT_BACKEND=private_redis.url,
    )
    dashboard = reverse("dashboard:overview", kwargs={"license_id": license_a.public_id})
    with redis_at(private_redis.url, settings):
        # The default queue: this Redis is the test's own, no other worker reads it, and
        # Refresh Data hands work to the default queue.
        worker = start_worker(env, queue="celery")
        assert ping.apply_async(queue=worker.queue).get(timeout=60) == "pong", worker.output()
        private_redis.stop()

        # Customers keep working; Refresh Data does what it can and says the rest must wait.
        response = client_a.post(
            reverse("dashboard:refresh", kwargs={"license_id": license_a.public_id}), follow=True
        )
        [shown] = [str(m) for m in response.context["messages"]]
        assert "refreshing the rest is unavailable right now" in shown
        assert client_a.get(dashboard).status_code == 200
        csv = client_a.get(
            reverse("dashboard:history_csv", kwargs={"license_id": license_a.public_id})
        )
        assert csv.status_code == 200
        health = client_a.get("/healthz")
        assert health.status_code == 503 and health.json()["down"] == ["redis"]
        fetched = SyncState.objects.for_license(license_a).get().records_charged
        assert fetched > 0

        # Redis comes back, empty: the hand-over was never queued. The worker reconnects by
        # itself, this web process enqueues again without a restart, and the sync catches up.
        private_redis.start()
        assert client_a.get("/healthz").status_code == 200
        response = client_a.post(
            reverse("dashboard:refresh", kwargs={"license_id": license_a.public_id}), follow=True
        )
        assert [str(m) for m in response.context["messages"]] == [
            "More usage is still arriving — the rest will appear within a few minutes."
        ]
        try:
            wait_for(
                lambda: (
                    SyncState.objects.for_license(license_a)
                    .filter(last_success_at__isnull=False)
                    .exists()
                ),
                # The worker's reconnection waits 2 s, then 4, 6 … up to 30 s between tries
                # (kombu's ensure_connection), counted from when Redis stopped: on a busy
                # machine its next try can come a minute or more after Redis is back.
                timeout=180,
                message="the worker to finish the sync",
            )
        except AssertionError:
            raise AssertionError(worker.output()) from None
    assert_ledger_matches_upstream(license_a, upstream_summary(license_key=license_a.key))
    assert_reconciles()


# --- the upstream fails, then recovers -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_upstream_failing_then_recovering_loses_nothing_and_syncs_catch_up(
    start_simulator, license_a, client_a, settings
):
    settings.UPSTREAM_PAGE_SIZE = 50
    settings.UPSTREAM_MAX_ATTEMPTS = 3
    server = start_simulator(profiles=[profile_for(license_a, days=2)])
    # Some pages arrive, then the upstream starts failing every request.
    assert usage_sync_license(license=license_a, trigger="beat", max_pages=3).pages == 3
    charged_before = SyncState.objects.for_license(license_a).get().records_charged
    server.simulator.faults = Faults(error_share=1.0)
    asked_before = server.simulator.stats.by_path["/v1/usage"]
    started = time.monotonic()
    failed = usage_sync_license_task.apply(args=[license_a.pk], kwargs={"trigger": "beat"}).get()
    # Bounded: a few tries with backoff, then the run ends with the error recorded (the next
    # beat tries again); it neither hangs nor hammers the upstream.
    assert failed["error"].startswith("Upstream answered 5")
    assert failed["ran"] and not failed["complete"] and failed["records_charged"] == 0
    assert server.simulator.stats.by_path["/v1/usage"] - asked_before == 3
    assert time.monotonic() - started < 10
    state = SyncState.objects.for_license(license_a).get()
    assert (
        state.last_error.startswith("Upstream answered 5")
        and state.records_charged == charged_before
    )

    # Slow instead of failing: each request times out, same outcome.
    server.simulator.faults = Faults(timeout_share=1.0, timeout_seconds=3)
    slow = usage_sync_license(license=license_a, trigger="beat")
    assert "timed out" in slow.error

    # The upstream recovers: the next run catches up from the stored cursor.
    server.simulator.faults = Faults()
    recovered = usage_sync_license_task.apply(args=[license_a.pk], kwargs={"trigger": "beat"}).get()
    assert recovered["complete"] and recovered["error"] == ""
    assert_ledger_matches_upstream(license_a, upstream_summary(license_key=license_a.key))
    assert_reconciles()
    assert SyncState.objects.for_license(license_a).get().last_error == ""
