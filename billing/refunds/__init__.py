"""Refunds of usage charges and goodwill credits issued by the billing team."""
