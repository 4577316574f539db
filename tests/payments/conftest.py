"""localstripe (a stateful fake Stripe server, PyPI) as a real process on a free loopback
port for the whole session, and helpers to act as Stripe and as the browser's Stripe.js.

localstripe keeps its store in /tmp/localstripe.pickle, shared by every instance on the
machine: this one starts --from-scratch (its own empty store in memory) and every test
flushes it (DELETE /_config/data); nothing here assumes it is alone in that file.
"""

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import stripe
from django.core.management import call_command
from django.test import Client
from pytest_django.fixtures import Settings

from tests.services import free_port

if TYPE_CHECKING:  # the test client's response, as django-stubs names it (stubs only)
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

SECRET_KEY = "sk_test_portal_tests"
PUBLISHABLE_KEY = "pk_test_portal_tests"
WEBHOOK_SECRET = "whsec_portal_tests"
CARD_OK = "4242424242424242"
CARD_DECLINED_ON_ATTACH = "4000000000000002"
CARD_DECLINED_ON_CHARGE = "4000000000000341"
CARD_3DS = "4000002500003155"


class LocalStripe:
    def __init__(self, url: str, process: subprocess.Popen[bytes]):
        self.url = url
        self.process = process

    def flush(self) -> None:
        httpx.delete(f"{self.url}/_config/data", timeout=5).raise_for_status()

    def register_webhook(self, url: str, name: str = "portal") -> None:
        httpx.post(
            f"{self.url}/_config/webhooks/{name}",
            data={"url": url, "secret": WEBHOOK_SECRET},
            timeout=5,
        ).raise_for_status()

    def api(self, method: str, path: str, **data: str | int) -> dict[str, Any]:
        """A call with the secret key, as Stripe's own dashboard (or anyone) would make."""
        response = httpx.request(
            method, f"{self.url}{path}", data=data or None, auth=(SECRET_KEY, ""), timeout=10
        )
        response.raise_for_status()
        return response.json()

    def confirm_setup(self, client_secret: str, number: str = CARD_OK) -> httpx.Response:
        """What localstripe's Stripe.js does for confirmCardSetup with a typed card."""
        seti = client_secret.split("_secret_")[0]
        return httpx.post(
            f"{self.url}/v1/setup_intents/{seti}/confirm",
            content=json.dumps(
                {
                    "key": PUBLISHABLE_KEY,
                    "use_stripe_sdk": True,
                    "client_secret": client_secret,
                    "payment_method_data": {
                        "type": "card",
                        "card": {
                            "number": number,
                            "exp_month": "12",
                            "exp_year": "2034",
                            "cvc": "123",
                        },
                    },
                }
            ),
            timeout=10,
        )


@pytest.fixture(scope="session")
def localstripe_server() -> Iterator[LocalStripe]:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{url}/js.stripe.com/v3/", timeout=1)
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("localstripe did not start") from None
            time.sleep(0.1)
    yield LocalStripe(url, process)
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def localstripe(localstripe_server: LocalStripe, settings: Settings) -> LocalStripe:
    """Stripe configured against localstripe, with an empty store."""
    localstripe_server.flush()
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe_server.url
    settings.STRIPE_JS_URL = f"{localstripe_server.url}/js.stripe.com/v3/"
    settings.STRIPE_DEADLINE_SECONDS = 5
    return localstripe_server


def signed(
    payload: dict[str, Any] | bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None
) -> tuple[bytes, str]:
    """A body and its Stripe-Signature header, signed the way Stripe signs (the library's
    own scheme: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<body>"))."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    timestamp = int(time.time()) if at is None else at
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body.decode()}", secret)
    return body, f"t={timestamp},v1={signature}"


def event(kind: str, obj: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def post_event(
    client: Client, payload: dict[str, Any] | bytes, signature: str | None = None
) -> "TestResponse":
    body, header = signed(payload)
    return client.post(
        "/payments/stripe/webhook/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature if signature is not None else header,
    )


def reconciles(month: str) -> str:
    out = io.StringIO()
    call_command("reconcile_ledger", month=month, stdout=out)
    return out.getvalue()


def money(text: str) -> Decimal:
    return Decimal(text)


# The billing team's logins (tests/billing/conftest.py), for the admin refund form.
from tests.billing.conftest import billing_client, billing_user  # noqa: E402, F401
