"""What billing announces to the apps above it, sent inside the transaction that made it
happen (so a rolled-back posting announces nothing). A receiver must not do network work
there: it records what it owes and acts after commit (api.webhooks does).

`billing_event` carries `event_type` (one of EVENT_TYPES), `license` and `data` (plain
JSON values: amounts as 6-place strings, times as RFC 3339). A new money flow (card
payments, auto top-up, disputes) adds its type here and sends it the same way."""

from django.dispatch import Signal

BALANCE_LOW = "balance.low"
BALANCE_DEPLETED = "balance.depleted"
PURCHASE_SUCCEEDED = "purchase.succeeded"
REFUND_ISSUED = "refund.issued"
# Sent by payments (it sits on billing): an automatic top-up that could not be made, and a
# card dispute opened or changing status.
AUTO_TOPUP_FAILED = "auto_topup.failed"
DISPUTE_UPDATED = "dispute.updated"
EVENT_TYPES = (
    BALANCE_LOW,
    BALANCE_DEPLETED,
    PURCHASE_SUCCEEDED,
    REFUND_ISSUED,
    AUTO_TOPUP_FAILED,
    DISPUTE_UPDATED,
)

billing_event = Signal()
