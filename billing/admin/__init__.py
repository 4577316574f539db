"""The billing team's admin, one module per subject: the ledger (read-only) and its money
pages (refund, goodwill, purchase), the reconciliation, prices (add-only), and the derived
balances, rollups and alerts (read-only). Importing them registers them."""

from billing.admin import balances, flags, ledger, prices

__all__ = ["balances", "flags", "ledger", "prices"]
