"""What follows a `limit.reached` money event (a consumer billing registers in its
AppConfig.ready): the owners' email, handed to a worker once the consumer's transaction
commits. The cursor reads each event once; the gate never talks to the broker."""

from django.db import transaction

from billing.events.models import MoneyEvent
from billing.handoffs import limit_email_enqueue

# The consumer's name: its cursor over the money events.
LIMIT_EMAIL_CONSUMER = "billing.limit_emails"


def limit_email_on_money_event(event: MoneyEvent) -> None:
    event_id = event.pk
    transaction.on_commit(lambda: limit_email_enqueue(event_id=event_id))
