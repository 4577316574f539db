from smtplib import SMTPException

from celery import shared_task

from billing.alerts import balance_alert_send


@shared_task(
    name="billing.send_balance_alert",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=60 * 30,
    retry_jitter=True,
    max_retries=10,
    acks_late=True,
)
def send_balance_alert(alert_id: int) -> bool:
    """Idempotent: an alert already sent is not sent again."""
    return balance_alert_send(alert_id=alert_id)
