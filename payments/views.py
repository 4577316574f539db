"""Stripe's webhook: POST /payments/stripe/webhook/ (the customer's payment pages are
customer pages, so they live in the dashboard: dashboard/payment_views.py)."""

import json
import logging

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from payments import stripe_client
from payments.events import stripe_event_store
from payments.stripe_client import SignatureInvalid
from payments.tasks import stripe_event_enqueue

logger = logging.getLogger(__name__)


@method_decorator(csrf_exempt, name="dispatch")
class StripeWebhookView(View):
    """POST /payments/stripe/webhook/: verify the signature (400 and nothing changes when it
    does not), keep the event once, answer 200 at once; a worker acts on it."""

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            event = stripe_client.webhook_event_construct(
                payload=request.body, signature=request.headers.get("Stripe-Signature", "")
            )
        except SignatureInvalid as exc:
            logger.warning("stripe webhook refused: %s", exc)
            return HttpResponse("bad signature", status=400, content_type="text/plain")
        with transaction.atomic():
            row, pending = stripe_event_store(event=event)
            if pending:
                pk = row.pk
                transaction.on_commit(lambda: stripe_event_enqueue(event_pk=pk))
        return HttpResponse(
            json.dumps({"received": True, "duplicate": not pending}),
            content_type="application/json",
        )
