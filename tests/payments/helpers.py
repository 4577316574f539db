"""Setting up a license that pays by card, through the real services and localstripe."""

from decimal import Decimal
from typing import Any

from accounts.models import License, User
from payments import stripe_client
from payments.models import Payment, SavedCard
from payments.services.cards import card_save, card_setup_start, default_card
from payments.services.paying import payment_create
from tests.payments.conftest import CARD_OK, LocalStripe


def save_card(
    localstripe: LocalStripe, license: License, user: User, number: str = CARD_OK
) -> SavedCard:
    """What the browser does: a SetupIntent, Stripe.js confirms the card, the portal keeps it."""
    setup = card_setup_start(license=license, acting_user=user)
    response = localstripe.confirm_setup(setup["client_secret"], number)
    assert response.status_code == 200, response.text
    return card_save(license=license, acting_user=user, setup_intent_id=setup["id"])


def succeeded_intent_not_yet_credited(
    license: License, user: User, amount: str = "25"
) -> tuple[Payment, dict[str, Any]]:
    """A payment the portal created, whose intent succeeded at Stripe, before any of the
    paths that credit it (webhook, browser return) has arrived."""
    from payments.services.cards import account_get

    card = default_card(license)
    assert card is not None, "the license pays by a saved card (save_card first)"
    payment = payment_create(
        license=license,
        amount=Decimal(amount),
        source=Payment.Source.PURCHASE,
        card=card,
        acting_user=user,
    )
    intent = stripe_client.payment_intent_create(
        amount_cents=payment.amount_cents,
        customer_id=account_get(license).stripe_customer_id,
        payment_method_id=card.payment_method_id,
        metadata={"license": str(license.public_id), "payment": str(payment.pk)},
        idempotency_key=f"test-{payment.pk}",
        off_session=False,
    )
    assert intent["status"] == "succeeded"
    Payment.objects.filter(pk=payment.pk).update(intent_id=intent["id"])
    payment.refresh_from_db()
    return payment, intent
