"""Writing money events down: the one way an app records what happened to money, in the
transaction that made it happen (billing's postings, payments' own transactions). The
consumers read it after that transaction commits (billing.events.consumers)."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from accounts.models import License
from billing.events.models import MoneyEvent
from billing.events.tasks import money_events_nudge
from billing.handoffs import handoff_after_commit
from billing.ledger.kinds import PURCHASE_REFUND, USAGE_REFUND, Movement, movement_of
from billing.models import LedgerEntry
from billing.money import quantize_money


def money_text(amount: Decimal) -> str:
    """An amount as events carry it: a string with 6 places ("12.500000")."""
    return f"{quantize_money(amount):f}"


def time_text(moment: datetime) -> str:
    """A moment as events carry it: RFC 3339."""
    return moment.isoformat()


def entry_movement(entry: LedgerEntry) -> Movement:
    return movement_of(entry.kind, entry.amount, entry.service)


def entry_data(entry: LedgerEntry, **more: Any) -> dict[str, Any]:
    """What an event says about the one ledger entry it is about (and `more`). `amount` is
    the movement's size, always positive: a card refund of $4 says "4.000000" refunded, as
    the customer's card statement does; the event's type says which way the balance went.
    A refund names what it reverses: a purchase refund its `purchase_id`, a usage refund
    its `charge_id` (each a transaction id)."""
    movement = entry_movement(entry)
    data: dict[str, Any] = {
        "transaction_id": entry.pk,
        "movement": movement.name,
        "amount": money_text(abs(entry.amount)),
        "description": entry.description,
        "occurred_at": time_text(entry.occurred_at),
    }
    if movement is PURCHASE_REFUND:
        data["purchase_id"] = entry.refund_of_id
    elif movement is USAGE_REFUND:
        data["charge_id"] = entry.refund_of_id
    return {**data, **more}


def grant_data(*, kind: str, expires_at: datetime | None) -> dict[str, Any]:
    """What a credit's or a purchase's event says of the grant it opened (or an expiry's
    of the grant it closed): its kind (paid, promotional) and its expiry (null: never)."""
    return {"grant_kind": kind, "expires_at": time_text(expires_at) if expires_at else None}


def money_event_record(
    *, license: License, event_type: str, data: dict[str, Any], nudge: bool = True
) -> MoneyEvent:
    """Write an event down in the caller's transaction; the consumers are nudged once it
    commits (later, outside a `handoffs_deferred` block). A rolled-back transaction leaves
    no event, and nothing is nudged. `nudge=False`: this transaction owes a nudge already
    (one reads all its events)."""
    event = MoneyEvent.objects.create(license=license, type=event_type, data=data)
    if nudge:
        handoff_after_commit(money_events_nudge)
    return event
