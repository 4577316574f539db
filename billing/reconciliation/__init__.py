"""The billing team's monthly reconciliation of stored figures against the ledger."""
