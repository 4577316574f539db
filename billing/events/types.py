"""The money events billing writes, by name. Payments names its own (payments.event_types);
the customer's webhook catalogue is made of the ones each app announces (api.events).

Every event that moves the balance carries `balance_after` (a 6-place string): what a
reaction to the balance (auto top-up) reads. An announced event's `data` is its webhook
payload, as customers receive it."""

USAGE_RECORDED = "usage.recorded"  # a batch of usage records charged (a sync page)
PURCHASE_SUCCEEDED = "purchase.succeeded"
REFUND_ISSUED = "refund.issued"  # a refund of a charge or a purchase, or a goodwill credit
BALANCE_LOW = "balance.low"  # the alert threshold crossed (once per crossing)
BALANCE_DEPLETED = "balance.depleted"  # zero reached (once per crossing)

BALANCE_MOVED = (USAGE_RECORDED, PURCHASE_SUCCEEDED, REFUND_ISSUED)
ANNOUNCED = (BALANCE_LOW, BALANCE_DEPLETED, PURCHASE_SUCCEEDED, REFUND_ISSUED)
