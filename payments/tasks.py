"""Celery tasks of payments, and the hand-over of work to them (portal.tasks.task_enqueue)."""

from celery import shared_task

from payments import emails
from payments.autotopup import auto_topup_charge
from payments.events import stripe_event_process, stripe_events_pending
from payments.stripe_client import ProviderUnavailable
from portal.tasks import EMAIL_RETRY, task_enqueue


@shared_task(
    name="payments.process_event",
    autoretry_for=(ProviderUnavailable,),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=20,
    acks_late=True,
    ignore_result=True,
)
def process_event(event_pk: int) -> str:
    """Idempotent: a processed event is left alone; crediting is once per intent anyway."""
    return stripe_event_process(event_pk=event_pk)


@shared_task(name="payments.process_pending_events", ignore_result=True)
def process_pending_events() -> int:
    """Events whose hand-over was lost (broker down when they arrived)."""
    pending = stripe_events_pending()
    for pk in pending:
        stripe_event_enqueue(event_pk=pk)
    return len(pending)


@shared_task(name="payments.auto_topup_charge", acks_late=True, ignore_result=True)
def auto_topup_charge_task(payment_id: int) -> str:
    """Not retried: a top-up Stripe did not answer is settled by its webhook, never charged
    again (auto_topup_charge claims the payment before calling Stripe)."""
    return auto_topup_charge(payment_id=payment_id).status


@shared_task(
    name="payments.auto_topup_notice",
    ignore_result=True,
    **EMAIL_RETRY,
)
def auto_topup_notice(kind: str, license_id: int, message: str, switched_off: bool) -> None:
    """The email of a top-up that was not started (capped, or no card to charge)."""
    if kind == "capped":
        emails.auto_topup_capped_send(license_id=license_id, why=message)
    else:
        emails.auto_topup_failed_send(
            license_id=license_id, message=message, switched_off=switched_off
        )


@shared_task(name="payments.card_refund_email", ignore_result=True, **EMAIL_RETRY)
def card_refund_email(event_id: int) -> None:
    emails.card_refund_send(event_id=event_id)


def card_refund_email_enqueue(*, event_id: int) -> bool:
    return task_enqueue(
        card_refund_email, args=[event_id], what=f"card refund email of money event {event_id}"
    )


def stripe_event_enqueue(*, event_pk: int) -> None:
    """Hand an event to a worker; with the broker down, process it here and now."""
    if not task_enqueue(process_event, args=[event_pk], what=f"stripe event {event_pk}"):
        stripe_event_process(event_pk=event_pk)


def auto_topup_enqueue(*, payment_id: int) -> bool:
    """False when the broker is down: the payment stays `created` (shown to staff) and is
    charged by the next hand-over; nothing is charged twice."""
    return task_enqueue(
        auto_topup_charge_task, args=[payment_id], what=f"auto top-up payment {payment_id}"
    )


def auto_topup_notice_enqueue(
    *, kind: str, license_id: int, message: str, switched_off: bool
) -> bool:
    return task_enqueue(
        auto_topup_notice,
        args=[kind, license_id, message, switched_off],
        what=f"auto top-up {kind} email for license {license_id}",
    )
