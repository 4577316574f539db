"""The one client module for Stripe: configuration, timeouts, retries and error translation.

Everything else in the portal calls these functions and gets plain dicts back (never
stripe objects) or one of the errors below, each with a message meant for people. Tests and
`make run` point STRIPE_API_BASE at localstripe, a real fake server, never a mock.
"""

import logging
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings

from billing.money import money_exact, quantize_money

logger = logging.getLogger(__name__)


class PaymentProviderError(Exception):
    """Stripe refused or failed a request. `message` is meant for people."""

    def __init__(self, message: str, *, code: str = "", intent: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.intent = intent


class CardDeclined(PaymentProviderError):
    """The card was declined or its authentication failed: nothing was charged."""


class ProviderUnavailable(PaymentProviderError):
    """Stripe did not answer (network, timeout, rate limit, its own error): try again later."""


class SignatureInvalid(Exception):
    """A webhook whose Stripe-Signature does not verify (or is missing)."""


def payments_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def _configure() -> None:
    # Read on every call: settings can differ between processes (and tests).
    stripe.api_key = settings.STRIPE_SECRET_KEY
    stripe.api_base = settings.STRIPE_API_BASE.rstrip("/")
    stripe.max_network_retries = settings.STRIPE_MAX_NETWORK_RETRIES
    stripe.default_http_client = stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS)


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    _configure()
    try:
        return _plain(fn(*args, **kwargs))
    except stripe.CardError as exc:
        error = exc.error
        intent = getattr(error, "payment_intent", None) if error is not None else None
        message = exc.user_message or "Your card was declined."
        raise CardDeclined(
            message, code=exc.code or "card_declined", intent=_plain(intent) if intent else None
        ) from exc
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        logger.warning("stripe %s: not answering (%s)", what, exc)
        raise ProviderUnavailable(
            "The payment service is not answering right now; nothing was charged. "
            "Please try again in a few minutes."
        ) from exc
    except stripe.StripeError as exc:
        logger.warning("stripe %s failed: %s %s", what, type(exc).__name__, exc)
        if exc.http_status is not None and exc.http_status >= 500:
            raise ProviderUnavailable(
                "The payment service had a problem; nothing was charged. Please try again."
            ) from exc
        raise PaymentProviderError(
            exc.user_message or "The payment service refused the request.", code=exc.code or ""
        ) from exc


# --- amounts -----------------------------------------------------------------------------


def cents_for(amount: Decimal) -> int:
    """Whole cents of an amount that has no fraction of a cent (ValueError otherwise)."""
    amount = money_exact(amount)
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError("card payments are in whole cents")
    return int(cents)


def money_from_cents(cents: int) -> Decimal:
    return quantize_money(Decimal(cents) / 100)


def captured_cents(intent: dict[str, Any]) -> int:
    """What Stripe captured on a succeeded intent: `amount_received`, or (servers that do
    not send it, like localstripe) the latest charge's amount once it is captured."""
    if intent.get("amount_received") is not None:
        return int(intent["amount_received"])
    charge = intent.get("latest_charge")
    if isinstance(charge, dict) and charge.get("status") == "succeeded" and charge.get("captured"):
        return int(charge.get("amount_captured") or charge.get("amount") or 0)
    return 0


# --- customers, cards --------------------------------------------------------------------


def customer_create(*, email: str, name: str, license_ref: str) -> str:
    customer = _call(
        "customer create",
        stripe.Customer.create,
        email=email,
        name=name,
        metadata={"license": license_ref},
        idempotency_key=f"portal-customer-{license_ref}",
    )
    return str(customer["id"])


def setup_intent_create(*, customer_id: str, license_ref: str) -> dict[str, Any]:
    return _call(
        "setup intent create",
        stripe.SetupIntent.create,
        customer=customer_id,
        usage="off_session",
        metadata={"license": license_ref},
    )


def setup_intent_get(setup_intent_id: str) -> dict[str, Any]:
    return _call("setup intent get", stripe.SetupIntent.retrieve, setup_intent_id)


def payment_method_get(payment_method_id: str) -> dict[str, Any]:
    return _call("payment method get", stripe.PaymentMethod.retrieve, payment_method_id)


def payment_method_attach(*, payment_method_id: str, customer_id: str) -> dict[str, Any]:
    return _call(
        "payment method attach",
        stripe.PaymentMethod.attach,
        payment_method_id,
        customer=customer_id,
    )


def payment_method_detach(payment_method_id: str) -> dict[str, Any]:
    return _call("payment method detach", stripe.PaymentMethod.detach, payment_method_id)


# --- payments, refunds -------------------------------------------------------------------


def payment_intent_create(
    *,
    amount_cents: int,
    customer_id: str,
    payment_method_id: str,
    metadata: dict[str, str],
    idempotency_key: str,
    off_session: bool,
) -> dict[str, Any]:
    """Create and confirm, server-side, a PaymentIntent on a saved card. A decline raises
    CardDeclined (with the failed intent when Stripe sends it)."""
    options: dict[str, Any] = {
        "amount": amount_cents,
        "currency": settings.STRIPE_CURRENCY,
        "customer": customer_id,
        "payment_method": payment_method_id,
        "confirm": True,
        "metadata": metadata,
        "idempotency_key": idempotency_key,
    }
    if off_session:
        options["off_session"] = True
    return _call("payment intent create", stripe.PaymentIntent.create, **options)


def payment_intent_get(intent_id: str) -> dict[str, Any]:
    return _call("payment intent get", stripe.PaymentIntent.retrieve, intent_id)


def refund_create(
    *, intent_id: str, amount_cents: int, idempotency_key: str, metadata: dict[str, str]
) -> dict[str, Any]:
    return _call(
        "refund create",
        stripe.Refund.create,
        payment_intent=intent_id,
        amount=amount_cents,
        metadata=metadata,
        idempotency_key=idempotency_key,
    )


# --- webhooks ----------------------------------------------------------------------------


def webhook_event_construct(*, payload: bytes, signature: str) -> dict[str, Any]:
    """The event, once its signature verified against STRIPE_WEBHOOK_SECRET with the
    library's default tolerance (5 minutes); SignatureInvalid otherwise."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret or not signature:
        raise SignatureInvalid("missing signature or webhook secret")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError as exc:
        raise SignatureInvalid(str(exc)) from exc
    except ValueError as exc:  # not JSON
        raise SignatureInvalid(f"bad payload: {exc}") from exc
    return _plain(event)
