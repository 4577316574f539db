"""The money events payments writes (through billing.events.services.money_event_record, in
its own transactions), by name. Both are announced to customers (api.events): their
`data` is the webhook payload."""

# An automatic top-up that could not be made: no saved card, or the charge declined.
AUTO_TOPUP_FAILED = "auto_topup.failed"
# A card dispute opened, or its status changed.
DISPUTE_UPDATED = "dispute.updated"

ANNOUNCED = (AUTO_TOPUP_FAILED, DISPUTE_UPDATED)
