"""The consumers' runs as a Celery task: nudged after each commit that wrote events, and
swept by beat (portal.celery), so an event whose nudge was lost (the broker down, a worker
killed) is read all the same."""

from celery import shared_task

from billing.events.consumers import money_event_consumers_run
from portal.tasks import task_enqueue

# An event waiting on an older transaction still open (billing.events.consumers) is looked
# at again after 1, 2, 4, 8 and 16 seconds; later than that, by the sweep.
WAIT_RETRIES = 5


@shared_task(name="billing.money_events_consume", acks_late=True, ignore_result=True)
def money_events_consume(waited: int = 0) -> int:
    """Run every consumer; idempotent (each reads from its cursor). Returns the events handled."""
    runs = money_event_consumers_run()
    if any(run.more for run in runs):
        task_enqueue(money_events_consume, what="more money events (the sweep reads them)")
    elif waited < WAIT_RETRIES and any(run.waiting for run in runs):
        task_enqueue(
            money_events_consume,
            kwargs={"waited": waited + 1},
            countdown=2**waited,
            what="money events waiting on an older transaction (the sweep reads them)",
        )
    return sum(run.processed for run in runs)


def money_events_nudge() -> bool:
    """Have the consumers read what was just committed; False (logged) when the broker is
    not answering: the events stay written and the sweep reads them."""
    return task_enqueue(money_events_consume, what="money events (the sweep reads them)")
