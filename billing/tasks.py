"""Celery tasks of billing that the beat runs (sweeps of what was owed, the gate's pruning,
the expiry of credit), and the registration of the tasks defined beside what they serve
(billing.handoffs, billing.events.tasks). Nothing in billing imports this module: it sits
above the postings it runs."""

from celery import shared_task

from billing.alerts.emails import balance_alerts_owed
from billing.credits.expiry import credits_expire
from billing.documents.emails import document_emails_owed
from billing.events.tasks import money_events_consume
from billing.handoffs import (
    balance_alert_enqueue,
    document_email_enqueue,
    send_balance_alert,
    send_document_email,
    send_flag_answer,
    send_limit_email,
)
from billing.ledger.statistics import ledger_statistics_refresh
from billing.limits.holds import gate_holds_prune

# Registered with the worker here: the tasks defined beside what they serve.
__all__ = [
    "money_events_consume",
    "send_balance_alert",
    "send_document_email",
    "send_flag_answer",
    "send_limit_email",
]


@shared_task(name="billing.send_owed_balance_alerts", ignore_result=True)
def send_owed_balance_alerts() -> int:
    """Hand over again alerts whose hand-over was lost (broker down when they were owed).
    Sending is idempotent, so an alert that was only slow to be picked up is sent once."""
    owed = balance_alerts_owed()
    for alert_id in owed:
        balance_alert_enqueue(alert_id=alert_id)
    return len(owed)


@shared_task(name="billing.prune_gate_holds", ignore_result=True)
def prune_gate_holds() -> int:
    """Forget the gate's answers long expired (billing.limits.gate)."""
    return gate_holds_prune()


@shared_task(name="billing.expire_credits", ignore_result=True)
def expire_credits() -> int:
    """Expire the credit grants now due (the beat, every few minutes). Idempotent: a grant
    already expired, by this run or one beside it, is expired once."""
    return len(credits_expire().expired)


@shared_task(name="billing.send_owed_document_emails", ignore_result=True)
def send_owed_document_emails() -> int:
    """Hand over again the documents' emails whose hand-over was lost."""
    owed = document_emails_owed()
    for document_id in owed:
        document_email_enqueue(document_id=document_id)
    return len(owed)


@shared_task(name="billing.refresh_ledger_statistics", ignore_result=True)
def refresh_ledger_statistics() -> list[str]:
    """ANALYZE the ledger's tables that changed by a tenth since their last ANALYZE
    (billing.ledger.statistics), for deployments where autovacuum is off or behind."""
    return ledger_statistics_refresh()
