"""What a posting owes once it commits, handed over to workers: the emails it owes (a
balance alert, a limit reached, a flag's answer, a new document) as Celery tasks and the
functions that enqueue them, and the hand-over after commit itself, deferred while a caller
holds a lock (`handoffs_deferred`). Below every writer of billing: it imports only what the
emails are sent with, so a posting can hand over without importing the beat's tasks
(billing.tasks, which import the postings they run)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

from celery import shared_task
from django.db import transaction

from billing.alerts.emails import balance_alert_send
from billing.documents.emails import document_email_send
from billing.flags.emails import flag_resolved_notify
from billing.limits.emails import limit_reached_send
from portal.tasks import EMAIL_RETRY, task_enqueue


@shared_task(
    name="billing.send_balance_alert",
    acks_late=True,
    **EMAIL_RETRY,
)
def send_balance_alert(alert_id: int) -> bool:
    """Idempotent: an alert already sent is not sent again."""
    return balance_alert_send(alert_id=alert_id)


@shared_task(name="billing.send_limit_email", acks_late=True, **EMAIL_RETRY)
def send_limit_email(event_id: int) -> None:
    limit_reached_send(event_id=event_id)


def limit_email_enqueue(*, event_id: int) -> bool:
    """Hand a limit's email to a worker; False (logged) when the broker is not answering."""
    return task_enqueue(send_limit_email, args=[event_id], what=f"limit email {event_id}")


def balance_alert_enqueue(*, alert_id: int) -> bool:
    """Hand an owed alert to a worker; False (logged) when the broker is not answering:
    the alert stays owed (sent_at empty) and `send_owed_balance_alerts` hands it over
    again once the broker is back."""
    return task_enqueue(
        send_balance_alert, args=[alert_id], what=f"balance alert {alert_id} (stays owed)"
    )


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


# A hand-over gives work to the broker after a commit: False when the broker did not take
# it (the work stays owed, and a sweep picks it up).
Handoff = Callable[[], bool]

# Hand-overs owed while a caller holds a lock it must not hold across a network call.
_deferred_handoffs: ContextVar[list[Handoff] | None] = ContextVar("deferred_handoffs", default=None)


def handoff_after_commit(handoff: Handoff) -> None:
    """Once the current transaction commits, call `handoff`: at once, or, inside
    `handoffs_deferred`, when that block ends, where the same hand-over owed by several
    commits is made once."""
    transaction.on_commit(lambda: _handoff(handoff))


def _handoff(handoff: Handoff) -> None:
    deferred = _deferred_handoffs.get()
    if deferred is None:
        handoff()
    elif handoff not in deferred:
        deferred.append(handoff)


def balance_alert_handoff(*, alert_id: int) -> None:
    """Hand an alert owed by the current transaction to a worker once it commits."""
    handoff_after_commit(partial(balance_alert_enqueue, alert_id=alert_id))


@contextmanager
def handoffs_deferred() -> Iterator[None]:
    """Hold back the hand-overs owed by commits inside the block until it ends.

    The sync wraps its per-license lock in this, so the broker (a network call) is never
    waited on while the lock is held, and its pages nudge the money events' consumers once.
    What is lost even so (the process dies, the broker is down) stays owed: the money events
    stay written for the sweep (`billing.money_events_consume`), an alert stays unsent for
    `send_owed_balance_alerts`. Once the broker has refused one, the rest are not tried: a
    broker that hangs costs its timeout once, not once per hand-over.
    """
    token = _deferred_handoffs.set([])
    try:
        yield
    finally:
        owed = _deferred_handoffs.get() or []
        _deferred_handoffs.reset(token)
        for handoff in owed:
            if not handoff():
                break


@shared_task(name="billing.send_document_email", acks_late=True, **EMAIL_RETRY)
def send_document_email(document_id: int) -> bool:
    """Idempotent: a document already emailed is not emailed again."""
    return document_email_send(document_id=document_id)


def document_email_enqueue(*, document_id: int) -> bool:
    """Hand a new document's email to a worker; False (logged) when the broker is not
    answering: the document stays unsent (emailed_at empty) for send_owed_document_emails."""
    return task_enqueue(
        send_document_email, args=[document_id], what=f"document email {document_id} (stays owed)"
    )
