"""Hooks the apps above billing register, so billing never imports them.

- `balance_changed` is sent inside the transaction that changed a license's balance, with
  its balance row locked (`license=`, `balance=` holding the new balance), right after the
  low-balance alert decision. A receiver decides there and hands any slow work (a call to a
  payment provider, an email) to a task after commit; it never calls out itself.
- A purchase recorded through a payment provider is refunded by that provider first: the
  app that records such purchases registers a refunder for its external id prefix
  ("pi:" for Stripe PaymentIntents), and billing's refund of a purchase calls it."""

from collections.abc import Callable
from typing import Any

from django.dispatch import Signal

balance_changed = Signal()

_purchase_refunders: dict[str, Callable[..., Any]] = {}


def purchase_refunder_register(*, prefix: str, refunder: Callable[..., Any]) -> None:
    """`refunder(acting_user=, purchase=, amount=, reason=, idempotency_key=)` refunds through
    the provider and records the ledger refund (billing.purchases.refunds.purchase_refund_record)."""
    _purchase_refunders[prefix] = refunder


def purchase_refunder_for(external_id: str) -> Callable[..., Any] | None:
    for prefix, refunder in _purchase_refunders.items():
        if external_id.startswith(prefix):
            return refunder
    return None
