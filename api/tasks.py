"""Celery tasks of the API app: webhook deliveries (api/webhooks.py does the work).

Each task is one attempt; the retry schedule lives in the delivery row
(`next_attempt_at`), not in the broker, so waits of hours survive restarts and Redis's
visibility timeout, and the beat sweeper picks them up.

Deliveries run on a queue of their own, `webhooks` (settings.CELERY_TASK_ROUTES), served
by a worker of their own (`make run` starts it: a pool of threads, since an attempt mostly
waits on the network): a slow receiver never delays a sync, a payment or an email, and each
attempt ends by WEBHOOK_DEADLINE_SECONDS.
"""

from celery import shared_task

from api.webhooks import webhook_deliveries_take_due, webhook_delivery_attempt
from portal.tasks import task_enqueue


@shared_task(name="api.deliver_webhook", acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> str:
    return webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="api.deliver_due_webhooks", ignore_result=True)
def deliver_due_webhooks() -> int:
    """Hands each due delivery to a worker as a task of its own (never attempts them here, one
    after the other: one slow receiver would hold up every delivery behind it)."""
    due = webhook_deliveries_take_due()
    webhook_deliveries_enqueue(delivery_ids=due)
    return len(due)


def webhook_deliveries_enqueue(*, delivery_ids: list[int]) -> None:
    """Hand new deliveries to a worker; one the broker did not take is still due and the
    sweeper (deliver_due_webhooks, every minute) makes it."""
    for delivery_id in delivery_ids:
        task_enqueue(
            deliver_webhook, args=[delivery_id], what=f"webhook delivery {delivery_id} (stays due)"
        )
