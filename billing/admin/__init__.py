"""The billing team's admin, one module per subject: the ledger (read-only) and its money
pages (refund, goodwill, purchase), credit approvals (four eyes), the reconciliation, prices
(add-only), spend limits, invoices and credit notes (read-only, with their PDF), and the derived balances, rollups and alerts (read-only). Importing them
registers them."""

from billing.admin import approvals, balances, documents, flags, ledger, limits, prices

__all__ = ["approvals", "balances", "documents", "flags", "ledger", "limits", "prices"]
