"""Purchases of credit and their refunds to the card."""
