"""What follows a posting, inside its transaction with the balance row locked: the money
log line (written once it commits), the money event saying what happened, and the
low-balance alert decision, whose crossing is a money event too. Nothing of the apps above
runs here: they read the events after the commit (billing.events.consumers)."""

import logging
from datetime import datetime
from typing import Any

from django.db import transaction

from accounts.models import License
from billing.alerts.services import balance_alert_check
from billing.events.services import (
    entry_data,
    entry_movement,
    money_event_record,
    money_text,
    time_text,
)
from billing.events.types import BALANCE_DEPLETED, BALANCE_LOW
from billing.handoffs import balance_alert_handoff
from billing.models import BalanceAlert, LedgerEntry, LicenseBalance
from portal.logfmt import logfmt

logger = logging.getLogger(__name__)


def money_log(event: str, **fields: object) -> None:
    """One line per money movement, written once its transaction commits: a movement rolled
    back (a crash, a refused refund) never shows in the log as if it had happened."""
    line = logfmt(event, **fields)
    transaction.on_commit(lambda: logger.info(line))


def money_moved(
    event_type: str,
    license: License,
    balance: LicenseBalance,
    *,
    data: dict[str, Any],
    latest_at: datetime,
    lowered: bool,
) -> None:
    """A posting (a whole batch of movements, the newest at `latest_at`) moved the balance,
    now `balance`: write it down as an event of `event_type` (its `data` and the balance
    after), then decide the low-balance alert."""
    money_event_record(
        license=license,
        event_type=event_type,
        data={**data, "balance_after": money_text(balance.balance)},
    )
    alert = balance_alert_check(
        license=license, balance=balance, latest_at=latest_at, lowered=lowered
    )
    if alert is not None:
        balance_alert_handoff(alert_id=alert.pk)
        # Once per line crossed, like the email; read with the posting's event (its nudge).
        money_event_record(
            license=license,
            event_type=BALANCE_DEPLETED if alert.kind == BalanceAlert.Kind.ZERO else BALANCE_LOW,
            data={
                "balance": money_text(alert.balance),
                "threshold": money_text(alert.threshold),
                "crossed_at": time_text(alert.crossed_at),
            },
            nudge=False,
        )


def entry_moved(license: License, balance: LicenseBalance, entry: LedgerEntry, **more: Any) -> None:
    """One entry posted: written down as its movement's event (billing.ledger.kinds, the
    one mapping: a card refund is purchase.refunded, goodwill credit.granted, an expiry
    credit.expired), its data the entry's and `more`; a movement out of the balance may
    cross a low-balance line."""
    movement = entry_movement(entry)
    money_moved(
        movement.event,
        license,
        balance,
        data=entry_data(entry, **more),
        latest_at=entry.occurred_at,
        lowered=movement.sign < 0,
    )
