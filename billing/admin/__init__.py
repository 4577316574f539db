"""The billing team's admin, one module per subject: the ledger (read-only) and its money
pages (refund, goodwill, purchase), credit approvals (four eyes), the reconciliation, prices
(add-only), spend limits, and the derived balances, rollups and alerts (read-only). Importing them
registers them."""

from billing.admin import approvals, balances, flags, ledger, limits, prices

__all__ = ["approvals", "balances", "flags", "ledger", "limits", "prices"]
