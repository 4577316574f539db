"""The money events billing writes, by name. Payments names its own (payments.event_types);
the customer's webhook catalogue is made of the ones each app announces (api.events).

A posting's event is its movement's (billing.ledger.kinds: `Movement.event`, one mapping
beside MOVEMENTS), so a card refund is `purchase.refunded` wherever it is posted from and
no writer spells a type of its own. A usage refund keeps `refund.issued`, the name
endpoints have subscribed to since the start; what that name also carried before (card
refunds, goodwill) has its own type now (api migration 0002 subscribed those endpoints to
them too).

Every event that moves the balance carries `balance_after` (a 6-place string): what a
reaction to the balance (auto top-up) reads. An announced event's `data` is its webhook
payload, as customers receive it: `amount` is always the movement's size (positive), the
type saying which way it went."""

from billing.ledger.kinds import CREDIT, EXPIRY, PURCHASE, PURCHASE_REFUND, USAGE, USAGE_REFUND

USAGE_RECORDED = USAGE.event  # a batch of usage records charged (a sync page)
PURCHASE_SUCCEEDED = PURCHASE.event  # credit bought (a card, or paid credit recorded by hand)
PURCHASE_REFUNDED = PURCHASE_REFUND.event  # money back to the card for a purchase
CREDIT_GRANTED = CREDIT.event  # promotional credit: goodwill, a promotion, sign-up credit
REFUND_ISSUED = USAGE_REFUND.event  # a usage charge refunded, in part or whole
CREDIT_EXPIRED = EXPIRY.event  # the unused remainder of a grant left the balance at expiry
BALANCE_LOW = "balance.low"  # the alert threshold crossed (once per crossing)
BALANCE_DEPLETED = "balance.depleted"  # zero reached (once per crossing)
# The gate refused a call for a spend limit (the floor or the monthly cap), once per
# crossing (billing.limits.gate); moves no money.
LIMIT_REACHED = "limit.reached"

# Every movement's event: what reacts to the balance (auto top-up) reads them all.
BALANCE_MOVED = (
    USAGE_RECORDED,
    PURCHASE_SUCCEEDED,
    PURCHASE_REFUNDED,
    CREDIT_GRANTED,
    REFUND_ISSUED,
    CREDIT_EXPIRED,
)
ANNOUNCED = (
    BALANCE_LOW,
    BALANCE_DEPLETED,
    PURCHASE_SUCCEEDED,
    PURCHASE_REFUNDED,
    CREDIT_GRANTED,
    REFUND_ISSUED,
    CREDIT_EXPIRED,
    LIMIT_REACHED,
)
