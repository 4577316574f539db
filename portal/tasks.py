"""Celery plumbing every app shares: the one way web code hands work to a worker."""

import logging
from smtplib import SMTPException
from typing import Any

from celery import Task, shared_task
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)

# The one retry policy of a task that sends an email: a mail server that is down or slow is
# tried again with growing pauses (30 s up to 30 min, jittered) for about four hours.
EMAIL_RETRY: dict[str, Any] = {
    "autoretry_for": (SMTPException, OSError),
    "retry_backoff": 30,
    "retry_backoff_max": 60 * 30,
    "retry_jitter": True,
    "max_retries": 10,
}


def task_enqueue(
    task: Task,
    *,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    what: str,
    **options: Any,
) -> bool:
    """Hand a task to a worker; False (logged, naming `what`) when the broker is not answering.

    Runs after the work it follows has committed, so a Redis outage must never turn that
    work into an error: the caller says what happens instead (the rest of a sync waits for
    the next beat; an owed alert is swept up by billing.send_owed_balance_alerts).
    """
    try:
        task.apply_async(
            args=args,
            kwargs=kwargs,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5},
            # Nobody waits for the result. Asking for one would also subscribe this (web)
            # process to it in Redis, and after a Redis restart that stale subscription
            # makes every later enqueue fail until the process restarts.
            ignore_result=True,
            **options,
        )
    except (BrokerError, OSError) as exc:
        logger.warning("%s: could not enqueue (%s)", what, exc)
        return False
    return True


@shared_task(name="portal.ping")
def ping() -> str:
    """Answers "pong": lets a health check or a test prove a worker is consuming."""
    return "pong"
