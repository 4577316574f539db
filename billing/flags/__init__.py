"""Charge flags: a customer's question on one charge and the billing team's answer."""
