"""Hooks the apps above accounts register, so accounts never imports them."""

from django.dispatch import Signal

# Sent inside the transaction that changed a license's timezone, with `license=`.
# Billing rebuilds the rollups it keeps by local day (billing.apps).
license_timezone_changed = Signal()
