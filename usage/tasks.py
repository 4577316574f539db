"""Celery tasks of the usage app. Thin: they take ids, load, call the service.

Both are idempotent (the sync charges each record once, whatever runs it), so they can
be acked late and run again after a worker dies.
"""

import logging
import time
from dataclasses import asdict
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from accounts.models import License, User
from portal.logfmt import logfmt
from portal.tasks import task_enqueue
from usage.selectors import (
    license_for_sync,
    license_ids_owed_sync,
    license_ids_sweep,
    license_ids_to_sync,
    sync_feed_get,
)
from usage.services.feed import usage_feed_read, usage_sweep_advance
from usage.services.results import SyncOutcome, SyncResult
from usage.services.sync import usage_sync_license, usage_sync_now

logger = logging.getLogger(__name__)

# A queued sync older than this is dropped: the next beat (every 5 minutes) brings a fresh one.
SYNC_TASK_EXPIRES_SECONDS = 4 * 60
SYNC_SOFT_TIME_LIMIT = 4 * 60
SYNC_TIME_LIMIT = SYNC_SOFT_TIME_LIMIT + 30
# The sync stops between pages this long before the soft limit and continues in a new task.
SYNC_TIME_BUDGET_SECONDS = SYNC_SOFT_TIME_LIMIT - 40


def _queue_of(task: Any) -> str | None:
    # Follow-up tasks go to the queue their parent came from, so routing the fan-out to a
    # queue routes the whole sync there.
    return (task.request.delivery_info or {}).get("routing_key") or None


def usage_syncs_enqueue(
    license_ids: list[int], *, queue: str | None, expires: int | None = SYNC_TASK_EXPIRES_SECONDS
) -> None:
    """One beat-triggered sync task per license, straight to the broker (not task_enqueue)
    on one connection: the fan-out's cost is a broker round trip per license."""
    with usage_sync_license_task.app.producer_or_acquire() as producer:
        for license_id in license_ids:
            usage_sync_license_task.apply_async(
                args=[license_id],
                kwargs={"trigger": "beat"},
                expires=expires,
                queue=queue,
                ignore_result=True,  # nobody waits for it (see portal.tasks.task_enqueue)
                producer=producer,
            )


@shared_task(name="usage.sync_all_licenses", bind=True, ignore_result=True)
def usage_sync_all_licenses(self: Any) -> int:
    """The beat's fan-out (every five minutes): ask the upstream's feed which licenses
    have new usage, then enqueue a sync for every active license owed one (named by the
    feed, failing past its backoff, or never synced) and for the safety sweep's chunk. An
    idle license costs nothing. While the feed fails, every active license is polled, as
    before the feed existed.

    Nothing is lost if this dies half-way or the broker refuses: the feed's marks are in
    the database (`SyncState.owed_since`) until a sync completes, so the next beat enqueues
    them again; the sweep moves on only after its chunk is enqueued."""
    started = time.monotonic()
    queue = _queue_of(self)
    read = usage_feed_read()
    sweep = None
    if read.error:
        license_ids = license_ids_to_sync()
    else:
        sweep = license_ids_sweep(after_id=sync_feed_get().sweep_after_id)
        license_ids = sorted(set(license_ids_owed_sync()) | set(sweep.license_ids))
    # If the broker refuses, this task fails, and the owed marks stay for the next beat.
    usage_syncs_enqueue(license_ids, queue=queue)
    if sweep is not None:
        usage_sweep_advance(after_id=sweep.next_after_id)
    logger.info(
        logfmt(
            "sync fan-out",
            mode="full poll, feed failing" if read.error else "feed",
            feed_named=read.licenses_named,
            sweep=len(sweep.license_ids) if sweep else 0,
            enqueued=len(license_ids),
            duration_s=time.monotonic() - started,
        )
    )
    return len(license_ids)


@shared_task(
    name="usage.sync_license",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=SYNC_SOFT_TIME_LIMIT,
    time_limit=SYNC_TIME_LIMIT,
    # Upstream failures are handled by the client's retries and the next beat; these are
    # the database dropping out under us, worth a few quick tries.
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    retry_backoff=5,
    retry_backoff_max=60,
    retry_jitter=True,
)
def usage_sync_license_task(self: Any, license_id: int, trigger: str = "beat") -> dict[str, Any]:
    license = license_for_sync(license_id)
    if license is None:
        return {"ran": False, "skipped": "license closed or gone"}
    result = usage_sync_license(
        license=license, trigger=trigger, time_budget_seconds=SYNC_TIME_BUDGET_SECONDS
    )
    if result.outcome is SyncOutcome.PARTIAL:
        sync_enqueue(license_id=license_id, trigger=trigger, queue=_queue_of(self))
    return asdict(result)


def sync_enqueue(*, license_id: int, trigger: str, queue: str | None = None) -> bool:
    """Ask a worker to sync a license; False (logged) when the broker is not answering."""
    return task_enqueue(
        usage_sync_license_task,
        args=[license_id],
        kwargs={"trigger": trigger},
        what=f"sync license_id={license_id}",
        expires=SYNC_TASK_EXPIRES_SECONDS,
        queue=queue,
    )


def usage_sync_in_request(
    *,
    license: License,
    trigger: str,
    time_budget_seconds: float,
    acting_user: User | None = None,
) -> SyncResult:
    """Sync a license now, in this request, for at most `time_budget_seconds`, and hand
    what is left to a worker (`result.continued`). Refresh Data and the admin's Sync now
    (with `acting_user`, audited) both go through here."""
    if acting_user is not None:
        result = usage_sync_now(
            acting_user=acting_user, license=license, time_budget_seconds=time_budget_seconds
        )
    else:
        # A customer's click: answered at once while the upstream is known down.
        result = usage_sync_license(
            license=license,
            trigger=trigger,
            time_budget_seconds=time_budget_seconds,
            fail_fast=True,
        )
    if result.outcome is SyncOutcome.PARTIAL:
        result.continued = sync_enqueue(license_id=license.pk, trigger=trigger)
    return result
