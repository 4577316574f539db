"""Low-balance alerts: when one is owed, and its email."""
