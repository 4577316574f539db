"""A real worker process consumes a task through the real Redis broker."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from portal.celery import app
from portal.tasks import ping

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_queue():
    """A worker listening on a queue of its own, so no other worker can take the task."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "portal", "worker",
         "-Q", queue, "--pool", "solo", "--loglevel", "WARNING", "--without-heartbeat",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield queue
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.worker
def test_real_worker_runs_a_task_through_redis(worker_queue):
    result = ping.apply_async(queue=worker_queue)
    assert result.get(timeout=60) == "pong"


def test_celery_is_json_only_with_late_acks_and_time_limits():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_time_limit and conf.task_soft_time_limit
    assert conf.task_soft_time_limit < conf.task_time_limit
