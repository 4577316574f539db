"""The sync across processes: killed mid-run, two at once, and run by a real Celery worker."""

import signal
import subprocess
import threading
import time

import pytest
from django.db import connection

from accounts.models import License
from portal.celery import app
from tests.accounts.factories import LicenseFactory
from tests.ledger import (
    assert_ledger_matches_upstream,
    cursor_of,
    ledger_charges,
    ledger_usage,
)
from tests.processes import PYTHON, ROOT, child_env, profile_for, wait_for
from usage.models import SyncState
from usage.services.sync import usage_sync_license
from usage.simulator import Faults
from usage.simulator.core import decode_cursor
from usage.tasks import usage_sync_all_licenses, usage_sync_license_task
from usage.upstream import upstream_summary


@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_a_sync_killed_after_a_page_committed_ends_exactly_right_when_run_again(
    start_simulator, license_a, settings
):
    server = start_simulator(
        profiles=[profile_for(license_a, days=2)], faults=Faults(latency_ms=150, repeat_share=0.3)
    )
    child = subprocess.Popen(
        [PYTHON, "manage.py", "sync_usage", "--license", license_a.key],
        cwd=ROOT,
        env=child_env(settings=settings, UPSTREAM_PAGE_SIZE="40"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: cursor_of(license_a), message="the first page to commit")
        child.send_signal(signal.SIGKILL)
    finally:
        output = child.communicate(timeout=30)[0].decode()
    assert child.returncode == -signal.SIGKILL, output

    # What was committed is exactly the stream up to the committed cursor: no page half-charged.
    cursor = cursor_of(license_a)
    stream = server.simulator.streams[license_a.key]
    served = {r.body["id"] for r in stream.records if r.stream_key <= decode_cursor(cursor)}
    charged = {external_id.rsplit(":", 1)[0] for external_id, *_ in ledger_charges(license_a)}
    assert charged == served
    summary = upstream_summary(license_key=license_a.key)
    assert 0 < len(charged) < summary["records"]

    # The killed process's lock went with its connection: the next run is not turned away.
    result = wait_for(
        lambda: r if (r := usage_sync_license(license=license_a, trigger="test")).ran else None,
        timeout=10,
        message="the killed sync's lock to be released",
    )
    assert result.complete
    assert result.records_charged == summary["records"] - len(charged)
    assert_ledger_matches_upstream(license_a, summary)


@pytest.mark.django_db(transaction=True)
def test_two_syncs_of_one_license_started_together_one_runs_one_steps_aside(
    start_simulator, license_a, settings
):
    # The running sync takes seconds (many slow pages); the other must not wait for it.
    settings.UPSTREAM_PAGE_SIZE = 50
    start_simulator(profiles=[profile_for(license_a, days=2)], faults=Faults(latency_ms=200))
    start = threading.Barrier(2)
    results = []

    def sync():
        try:
            start.wait()
            began = time.monotonic()
            result = usage_sync_license(license=license_a, trigger="test")
            results.append((result, time.monotonic() - began))
        finally:
            connection.close()

    threads = [threading.Thread(target=sync) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    (ran, ran_seconds), (aside, aside_seconds) = sorted(results, key=lambda r: not r[0].ran)
    assert ran.ran and ran.complete and ran_seconds > 2
    assert not aside.ran and aside.pages == 0 and aside.records_charged == 0
    assert aside_seconds < 1.5, "the second sync must return at once, not wait"
    assert_ledger_matches_upstream(license_a, upstream_summary(license_key=license_a.key))


def test_the_beat_schedule_syncs_every_five_minutes_with_an_expiry():
    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["usage-sync-every-five-minutes"]
    assert entry["task"] == usage_sync_all_licenses.name == "usage.sync_all_licenses"
    assert entry["task"] in app.tasks
    assert float(entry["schedule"]) == 300
    assert 0 < entry["options"]["expires"] < 300
    assert usage_sync_license_task.acks_late is True
    assert usage_sync_license_task.soft_time_limit < usage_sync_license_task.time_limit <= 300


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_syncs_a_license_and_the_fan_out_covers_every_active_license(
    start_simulator, start_worker, license_a, license_b, settings
):
    license_c = LicenseFactory(key="CHARLIE-000003")
    license_b.status = License.Status.SUSPENDED
    license_b.save()
    start_simulator(
        profiles=[profile_for(lic, days=1) for lic in (license_a, license_b, license_c)]
    )
    queue = start_worker(child_env(settings=settings)).queue

    result = usage_sync_license_task.apply_async(args=[license_a.pk], queue=queue).get(timeout=90)
    summary_a = upstream_summary(license_key=license_a.key)
    assert result["ran"] and result["complete"] and result["error"] == ""
    assert result["records_charged"] == summary_a["records"] > 0
    assert_ledger_matches_upstream(license_a, summary_a)

    usage_sync_all_licenses.apply_async(queue=queue)
    wait_for(
        lambda: SyncState.objects.for_license(license_c).exclude(last_success_at=None).exists(),
        timeout=90,
        message="the fan-out to sync license C",
    )
    assert_ledger_matches_upstream(license_c, upstream_summary(license_key=license_c.key))
    # The suspended license is not in the scheduled sync; license A had nothing new.
    assert ledger_usage(license_b)["records"] == 0
    assert_ledger_matches_upstream(license_a, summary_a)
