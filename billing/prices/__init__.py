"""Prices: each service's unit price over time, add-only."""
