"""Billing's models, each defined in its room (ledger, prices, alerts, closing, flags,
credits, events, limits): this is the app's models module, where Django and every other module take them
from (`from billing.models import LedgerEntry`)."""

from billing.alerts.models import BalanceAlert
from billing.closing.models import ClosedMonth
from billing.credits.models import (
    GRANT_SUMS,
    CreditApproval,
    CreditGrant,
    GrantDailyRollup,
    GrantKind,
)
from billing.documents.models import BillingDetails, Document, DocumentSeries
from billing.events.models import MoneyEvent, MoneyEventCursor
from billing.flags.models import ChargeFlag
from billing.ledger.models import (
    ROLLUP_SUMS,
    DailyRollup,
    EndpointDailyRollup,
    LedgerEntry,
    LicenseBalance,
    RollupSums,
    Service,
    money_field,
)
from billing.limits.models import GateHold, SpendLimit
from billing.prices.models import Price

__all__ = [
    "GRANT_SUMS",
    "ROLLUP_SUMS",
    "BalanceAlert",
    "BillingDetails",
    "ChargeFlag",
    "ClosedMonth",
    "CreditApproval",
    "CreditGrant",
    "DailyRollup",
    "Document",
    "DocumentSeries",
    "EndpointDailyRollup",
    "GateHold",
    "GrantDailyRollup",
    "GrantKind",
    "LedgerEntry",
    "LicenseBalance",
    "MoneyEvent",
    "MoneyEventCursor",
    "Price",
    "RollupSums",
    "Service",
    "SpendLimit",
    "money_field",
]
