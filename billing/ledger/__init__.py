"""The ledger: append-only entries, balances and rollups kept exact by one posting engine."""
