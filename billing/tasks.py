"""Celery tasks of billing, and the hand-over of owed alerts to them."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from celery import shared_task

from billing.alerts.emails import balance_alert_send, balance_alerts_owed
from billing.credits.expiry import credits_expire
from billing.flags.emails import flag_resolved_notify
from portal.tasks import EMAIL_RETRY, task_enqueue


@shared_task(
    name="billing.send_balance_alert",
    acks_late=True,
    **EMAIL_RETRY,
)
def send_balance_alert(alert_id: int) -> bool:
    """Idempotent: an alert already sent is not sent again."""
    return balance_alert_send(alert_id=alert_id)


@shared_task(name="billing.send_owed_balance_alerts", ignore_result=True)
def send_owed_balance_alerts() -> int:
    """Hand over again alerts whose hand-over was lost (broker down when they were owed).
    Sending is idempotent, so an alert that was only slow to be picked up is sent once."""
    owed = balance_alerts_owed()
    for alert_id in owed:
        balance_alert_enqueue(alert_id=alert_id)
    return len(owed)


def balance_alert_enqueue(*, alert_id: int) -> bool:
    """Hand an owed alert to a worker; False (logged) when the broker is not answering:
    the alert stays owed (sent_at empty) and `send_owed_balance_alerts` hands it over
    again once the broker is back."""
    return task_enqueue(
        send_balance_alert, args=[alert_id], what=f"balance alert {alert_id} (stays owed)"
    )


@shared_task(name="billing.expire_credits", ignore_result=True)
def expire_credits() -> int:
    """Expire the credit grants now due (the beat, every few minutes). Idempotent: a grant
    already expired, by this run or one beside it, is expired once."""
    return len(credits_expire().expired)


@shared_task(
    name="billing.send_flag_answer",
    acks_late=True,
    **EMAIL_RETRY,
)
def send_flag_answer(flag_id: int) -> bool:
    """Idempotent: an answer already emailed is not emailed again."""
    return flag_resolved_notify(flag_id=flag_id)


def flag_resolved_email_enqueue(*, flag_id: int) -> bool:
    """Hand the answer's email to a worker; False (logged) when the broker is down: the
    flag keeps notified_at empty, and the customer still sees the answer on the page."""
    return task_enqueue(send_flag_answer, args=[flag_id], what=f"flag {flag_id} answer email")


# Alert ids owed while a caller holds a lock it must not hold across a network call.
_deferred_handoffs: ContextVar[list[int] | None] = ContextVar("deferred_handoffs", default=None)


def balance_alert_handoff(*, alert_id: int) -> None:
    """After the commit that owed it: hand the alert to a worker now, or, inside
    `balance_alert_handoffs_deferred`, once that block ends."""
    deferred = _deferred_handoffs.get()
    if deferred is not None:
        deferred.append(alert_id)
    else:
        balance_alert_enqueue(alert_id=alert_id)


@contextmanager
def balance_alert_handoffs_deferred() -> Iterator[None]:
    """Hold back the hand-over of alerts owed inside the block until it ends.

    The sync wraps its per-license lock in this, so the broker (a network call) is never
    waited on while the lock is held. An alert whose hand-over is lost even so (the process
    dies, the broker is down) stays owed, and `send_owed_balance_alerts` picks it up.
    """
    token = _deferred_handoffs.set([])
    try:
        yield
    finally:
        owed = _deferred_handoffs.get() or []
        _deferred_handoffs.reset(token)
        for alert_id in owed:
            balance_alert_enqueue(alert_id=alert_id)
