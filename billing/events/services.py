"""Writing money events down: the one way an app records what happened to money, in the
transaction that made it happen (billing's postings, payments' own transactions). The
consumers read it after that transaction commits (billing.events.consumers)."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from accounts.models import License
from billing.events.models import MoneyEvent
from billing.events.tasks import money_events_nudge
from billing.models import LedgerEntry
from billing.money import quantize_money
from billing.tasks import handoff_after_commit


def money_text(amount: Decimal) -> str:
    """An amount as events carry it: a string with 6 places ("12.500000")."""
    return f"{quantize_money(amount):f}"


def time_text(moment: datetime) -> str:
    """A moment as events carry it: RFC 3339."""
    return moment.isoformat()


def entry_data(entry: LedgerEntry) -> dict[str, Any]:
    """What an event says about the one ledger entry it is about."""
    return {
        "transaction_id": entry.pk,
        "amount": money_text(entry.amount),
        "description": entry.description,
        "occurred_at": time_text(entry.occurred_at),
    }


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
