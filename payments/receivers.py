"""What payments does with billing's money events (consumers, registered in payments.apps):
each event that moved a balance is judged for an auto top-up after its posting committed,
in the consumer's own transaction; the charge (or the email saying why there is none) goes
to a worker after that commits. A card refund (`purchase.refunded`, whoever made it: the
billing team's page or Stripe's dashboard) is emailed to the owners, once per event."""

from decimal import Decimal

from django.db import transaction

from billing.events.models import MoneyEvent
from payments.autotopup import auto_topup_decide
from payments.tasks import (
    auto_topup_enqueue,
    auto_topup_notice_enqueue,
    card_refund_email_enqueue,
)

# The consumers' names: their cursors over the money events.
AUTO_TOPUP_CONSUMER = "payments.auto_topup"
CARD_REFUND_EMAIL_CONSUMER = "payments.card_refund_emails"


def card_refund_on_money_event(event: MoneyEvent) -> None:
    event_id = event.pk
    transaction.on_commit(lambda: card_refund_email_enqueue(event_id=event_id))


def auto_topup_on_money_event(event: MoneyEvent) -> None:
    license = event.license
    decision = auto_topup_decide(license=license, balance=Decimal(event.data["balance_after"]))
    if decision.payment is not None:
        payment_id = decision.payment.pk
        transaction.on_commit(lambda: auto_topup_enqueue(payment_id=payment_id))
    notice = decision.notice
    if notice is not None:
        license_id = license.pk
        transaction.on_commit(
            lambda: auto_topup_notice_enqueue(
                kind=notice.kind,
                license_id=license_id,
                message=notice.message,
                switched_off=notice.switched_off,
            )
        )
