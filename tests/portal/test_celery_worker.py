"""A real worker process consumes a task through the real Redis broker."""

import pytest

from portal.celery import app
from portal.tasks import ping


@pytest.mark.worker
def test_real_worker_runs_a_task_through_redis(start_worker):
    worker = start_worker()
    result = ping.apply_async(queue=worker.queue)
    assert result.get(timeout=60) == "pong", worker.output()


def test_celery_is_json_only_with_late_acks_and_time_limits():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_time_limit and conf.task_soft_time_limit
    assert conf.task_soft_time_limit < conf.task_time_limit
