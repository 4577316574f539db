"""Usage charges: upstream usage records charged once each, and usage read by period."""
