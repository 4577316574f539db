"""Celery tasks of the API app: webhook deliveries (api/webhooks.py does the work).

Each task is one attempt; the retry schedule lives in the delivery row
(`next_attempt_at`), not in the broker, so waits of hours survive restarts and Redis's
visibility timeout, and the beat sweeper picks them up.
"""

from celery import shared_task

from api.webhooks import webhook_deliveries_due, webhook_delivery_attempt
from portal.tasks import task_enqueue


@shared_task(name="api.deliver_webhook", acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> str:
    return webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="api.deliver_due_webhooks", ignore_result=True)
def deliver_due_webhooks() -> int:
    due = webhook_deliveries_due()
    for delivery_id in due:
        webhook_delivery_attempt(delivery_id=delivery_id)
    return len(due)


def webhook_deliveries_enqueue(*, delivery_ids: list[int]) -> None:
    """Hand new deliveries to a worker; one the broker did not take is still due and the
    sweeper (deliver_due_webhooks, every minute) makes it."""
    for delivery_id in delivery_ids:
        task_enqueue(
            deliver_webhook, args=[delivery_id], what=f"webhook delivery {delivery_id} (stays due)"
        )
