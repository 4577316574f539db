"""The one client module for Stripe: configuration, deadlines, retries and error translation.

Everything else in the portal calls these functions and gets plain dicts back (never
stripe objects) or one of the errors below, each with a message meant for people. Tests and
`make run` point STRIPE_API_BASE at localstripe, a real fake server, never a mock.

Nobody outside can hold a payment request (docs/security.md):
- every request goes through `DeadlineHttpClient` (portal/bounded_http.py): it ends within
  STRIPE_DEADLINE_SECONDS whatever Stripe does, reads at most STRIPE_MAX_ANSWER_BYTES, and
  a customer's page that calls Stripe several times caps them all at
  STRIPE_PAGE_BUDGET_SECONDS (`stripe_budget`), well under the web server's 60 s;
- nothing is retried automatically. A create that timed out may have been made; sent again,
  a server that ignores idempotency keys (localstripe does) makes a second one, and the
  card pays twice. The portal learns what happened from the webhook or the next look;
- an answer that says the request was refused (4xx) raises PaymentProviderError with
  `definitive`: the payment is failed, not left waiting for ever. Only no answer (network,
  timeout, 429, 5xx) is ProviderUnavailable, whose outcome is unknown.
"""

import functools
import logging
import ssl
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, NoReturn

import httpx
import stripe
from django.conf import settings

from billing.money import money_exact, quantize_money
from portal.bounded_http import DeadlineTransport, outbound_deadline

logger = logging.getLogger(__name__)


class PaymentProviderError(Exception):
    """Stripe refused or failed a request. `message` is meant for people. `http_status` is
    Stripe's answer (None without one); `missing`: Stripe does not know the object asked for
    (404), e.g. after a test server lost its data."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        intent: dict[str, Any] | None = None,
        http_status: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.intent = intent
        self.http_status = http_status

    @property
    def definitive(self) -> bool:
        """Stripe answered and refused: nothing was done, asking again changes nothing."""
        return True

    @property
    def missing(self) -> bool:
        return self.http_status == 404


class CardDeclined(PaymentProviderError):
    """The card was declined or its authentication failed: nothing was charged."""


class ProviderUnavailable(PaymentProviderError):
    """Stripe did not answer (network, timeout, rate limit, its own error): what it did is
    unknown until its webhook or the next look says."""

    @property
    def definitive(self) -> bool:
        return False


class SignatureInvalid(Exception):
    """A webhook whose Stripe-Signature does not verify (or is missing)."""


def payments_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


class DeadlineHttpClient(stripe.HTTPClient):
    """stripe-python's HTTP client, through the portal's deadline transport: each request
    ends within `deadline_seconds` and reads at most `max_bytes`; never retried."""

    name = "portal-deadline"

    def __init__(self, *, deadline_seconds: float, max_bytes: int) -> None:
        super().__init__()
        verify = ssl.create_default_context(cafile=stripe.ca_bundle_path)
        self._client = httpx.Client(
            transport=DeadlineTransport(
                deadline_seconds=deadline_seconds, max_bytes=max_bytes, verify=verify
            ),
            follow_redirects=False,
        )

    def _should_retry(self, *args: Any, **kwargs: Any) -> bool:
        return False  # see the module's docstring: a create sent twice can charge twice

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        try:
            response = self._client.request(
                method, url, headers=dict(headers or {}), content=post_data
            )
        except httpx.HTTPError as exc:
            self._unanswered(exc)
        return response.text, response.status_code, response.headers

    @staticmethod
    def _unanswered(exc: httpx.HTTPError) -> NoReturn:
        raise stripe.APIConnectionError(
            f"Stripe did not answer ({type(exc).__name__}: {exc})", should_retry=False
        ) from exc

    def request_stream(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError("the portal reads no streamed answers from Stripe")

    def close(self) -> None:
        self._client.close()


@functools.cache
def _http_client(deadline_seconds: float, max_bytes: int) -> DeadlineHttpClient:
    return DeadlineHttpClient(deadline_seconds=deadline_seconds, max_bytes=max_bytes)


def _configure() -> None:
    # Read on every call: settings can differ between processes (and tests).
    stripe.api_key = settings.STRIPE_SECRET_KEY
    stripe.api_base = settings.STRIPE_API_BASE.rstrip("/")
    stripe.max_network_retries = 0
    stripe.default_http_client = _http_client(
        settings.STRIPE_DEADLINE_SECONDS, settings.STRIPE_MAX_ANSWER_BYTES
    )


@contextmanager
def stripe_budget() -> Iterator[None]:
    """All the Stripe calls of one customer request end within STRIPE_PAGE_BUDGET_SECONDS."""
    with outbound_deadline(settings.STRIPE_PAGE_BUDGET_SECONDS):
        yield


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    _configure()
    started = time.monotonic()
    try:
        return _plain(fn(*args, **kwargs))
    except stripe.CardError as exc:
        error = exc.error
        intent = getattr(error, "payment_intent", None) if error is not None else None
        message = exc.user_message or "Your card was declined."
        raise CardDeclined(
            message,
            code=exc.code or "card_declined",
            intent=_plain(intent) if intent else None,
            http_status=exc.http_status,
        ) from exc
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        logger.warning(
            "stripe %s: no answer after %.1f s (%s)", what, time.monotonic() - started, exc
        )
        raise ProviderUnavailable(
            "The payment service did not answer in time. If it charged your card, the "
            "credits appear here within minutes (never twice); otherwise nothing was charged.",
            http_status=getattr(exc, "http_status", None),
        ) from exc
    except stripe.StripeError as exc:
        logger.warning("stripe %s failed: %s %s", what, type(exc).__name__, exc)
        if exc.http_status is None or exc.http_status >= 500:
            raise ProviderUnavailable(
                "The payment service had a problem. If it charged your card, the credits "
                "appear here within minutes (never twice); otherwise nothing was charged.",
                http_status=exc.http_status,
            ) from exc
        raise PaymentProviderError(
            exc.user_message or "The payment service refused the request.",
            code=exc.code or "",
            http_status=exc.http_status,
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


SIGNATURE_TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE  # 5 minutes


def webhook_event_construct(
    *, payload: bytes, signature: str, now: float | None = None
) -> dict[str, Any]:
    """The event, once its signature verified against STRIPE_WEBHOOK_SECRET and its stamp
    lies within SIGNATURE_TOLERANCE_SECONDS of now, either way (the library refuses only
    stale stamps: one stamped an hour ahead would stay replayable for that hour);
    SignatureInvalid otherwise."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret or not signature:
        raise SignatureInvalid("missing signature or webhook secret")
    try:
        event = stripe.Webhook.construct_event(
            payload, signature, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as exc:
        raise SignatureInvalid(str(exc)) from exc
    except ValueError as exc:  # not JSON
        raise SignatureInvalid(f"bad payload: {exc}") from exc
    now = time.time() if now is None else now
    for part in signature.split(","):
        name, _, value = part.partition("=")
        stamp = value.strip()
        ahead = (
            stamp.isascii() and stamp.isdigit() and int(stamp) > now + SIGNATURE_TOLERANCE_SECONDS
        )
        if name.strip() == "t" and ahead:
            raise SignatureInvalid("timestamp in the future, beyond the tolerance")
    return _plain(event)
