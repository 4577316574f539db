"""What follows a posting, inside its transaction: the money log line (written once it
commits), the low-balance alert decision, and the announcements to the apps above."""

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from accounts.models import License
from billing.alerts.services import balance_alert_check
from billing.hooks import balance_changed
from billing.models import BalanceAlert, LedgerEntry, LicenseBalance
from billing.money import quantize_money
from billing.signals import (
    BALANCE_DEPLETED,
    BALANCE_LOW,
    billing_event,
)
from billing.tasks import balance_alert_handoff
from portal.logfmt import logfmt

logger = logging.getLogger(__name__)


def money_log(event: str, **fields: object) -> None:
    """One line per money movement, written once its transaction commits: a movement rolled
    back (a crash, a refused refund) never shows in the log as if it had happened."""
    line = logfmt(event, **fields)
    transaction.on_commit(lambda: logger.info(line))


def balance_change_follow(
    license: License, balance: LicenseBalance, *, latest_at: datetime, lowered: bool
) -> None:
    """What follows a balance change (a whole batch of movements, the newest at
    `latest_at`), still inside its transaction with the row locked."""
    alert = balance_alert_check(
        license=license, balance=balance, latest_at=latest_at, lowered=lowered
    )
    if alert is not None:
        transaction.on_commit(lambda: balance_alert_handoff(alert_id=alert.pk))
        # Once per line crossed, like the email: the webhook event is recorded with the alert.
        billing_event.send(
            sender=BalanceAlert,
            event_type=BALANCE_DEPLETED if alert.kind == BalanceAlert.Kind.ZERO else BALANCE_LOW,
            license=license,
            data={
                "balance": f"{alert.balance:f}",
                "threshold": f"{alert.threshold:f}",
                "crossed_at": alert.crossed_at.isoformat(),
            },
        )
    balance_changed.send(sender=LicenseBalance, license=license, balance=balance)


def money_announce(
    event_type: str, license: License, entry: LedgerEntry, *, balance_after: Decimal | None
) -> None:
    """Tell the apps above that money moved (billing.signals), inside the transaction."""
    billing_event.send(
        sender=LedgerEntry,
        event_type=event_type,
        license=license,
        data={
            "transaction_id": entry.pk,
            "amount": f"{quantize_money(entry.amount):f}",
            "description": entry.description,
            "occurred_at": entry.occurred_at.isoformat(),
            "balance_after": f"{quantize_money(balance_after):f}"
            if balance_after is not None
            else None,
        },
    )
