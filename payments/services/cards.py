"""The license's Stripe customer and its saved cards: set up, saved, made default, removed.
Stripe is called with nothing locked and no transaction open."""

from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from payments import stripe_client
from payments.models import (
    PaymentAccount,
    SavedCard,
)
from payments.stripe_client import (
    PaymentProviderError,
    stripe_budget,
)
from portal.exceptions import ApplicationError


def license_ref(license: License) -> str:
    return str(license.public_id)


def account_get(license: License) -> PaymentAccount:
    account, _ = PaymentAccount.objects.get_or_create(
        license=license,
        defaults={
            "auto_topup_monthly_count": settings.AUTO_TOPUP_MONTHLY_COUNT,
            "auto_topup_monthly_amount": Decimal(settings.AUTO_TOPUP_MONTHLY_AMOUNT),
        },
    )
    return account


def _customer_ensure(license: License, acting_user: User) -> str:
    account = account_get(license)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer_id = stripe_client.customer_create(
        email=license.contact_email or acting_user.email,
        name=license.name,
        license_ref=license_ref(license),
    )
    with transaction.atomic():
        account = PaymentAccount.objects.select_for_update().get(pk=account.pk)
        if not account.stripe_customer_id:
            account.stripe_customer_id = customer_id
            account.save(update_fields=["stripe_customer_id", "updated_at"])
            audit_record(
                actor=acting_user,
                license=license,
                action="payments.customer",
                target=f"stripe customer {customer_id}",
            )
    return account.stripe_customer_id


@stripe_budget()
def card_setup_start(*, license: License, acting_user: User) -> dict[str, str]:
    """A SetupIntent for the browser to confirm with Stripe.js (confirmCardSetup)."""
    customer_id = _customer_ensure(license, acting_user)
    intent = stripe_client.setup_intent_create(
        customer_id=customer_id, license_ref=license_ref(license)
    )
    return {"id": str(intent["id"]), "client_secret": str(intent["client_secret"])}


@stripe_budget()
def card_save(*, license: License, acting_user: User, setup_intent_id: str) -> SavedCard:
    """Keep the card a confirmed SetupIntent saved, once it is this license's customer's."""
    account = account_get(license)
    try:
        setup = stripe_client.setup_intent_get(setup_intent_id)
    except PaymentProviderError as exc:
        raise ApplicationError(exc.message) from exc
    if (
        not account.stripe_customer_id
        or setup.get("customer") != account.stripe_customer_id
        or setup.get("status") != "succeeded"
        or not setup.get("payment_method")
    ):
        raise ApplicationError("The card could not be saved; please enter it again.")
    method_id = setup["payment_method"]
    if isinstance(method_id, dict):
        method_id = method_id["id"]
    method = stripe_client.payment_method_get(method_id)
    if not method.get("customer"):
        method = stripe_client.payment_method_attach(
            payment_method_id=method_id, customer_id=account.stripe_customer_id
        )
    elif method["customer"] != account.stripe_customer_id:
        raise ApplicationError("The card could not be saved; please enter it again.")
    card = method.get("card") or {}
    with transaction.atomic():
        PaymentAccount.objects.select_for_update().get(pk=account.pk)
        saved, created = SavedCard.objects.get_or_create(
            payment_method_id=method_id,
            defaults={
                "license": license,
                "brand": str(card.get("brand") or ""),
                "last4": str(card.get("last4") or ""),
                "exp_month": int(card.get("exp_month") or 0),
                "exp_year": int(card.get("exp_year") or 0),
            },
        )
        if saved.license_id != license.pk:
            raise ApplicationError("The card could not be saved; please enter it again.")
        if created:
            has_default = (
                SavedCard.objects.for_license(license)
                .filter(is_default=True, removed_at__isnull=True)
                .exists()
            )
            if not has_default:
                saved.is_default = True
                saved.save(update_fields=["is_default", "updated_at"])
            audit_record(
                actor=acting_user,
                license=license,
                action="payments.card_add",
                target=saved.label,
                changes={"payment_method": method_id, "default": saved.is_default},
            )
    return saved


@transaction.atomic
def card_default_set(*, license: License, acting_user: User, card: SavedCard) -> SavedCard:
    account_get(license)
    PaymentAccount.objects.select_for_update().get(license=license)
    if card.license_id != license.pk or card.removed_at is not None:
        raise ApplicationError("That card is not saved on this license.")
    SavedCard.objects.for_license(license).filter(is_default=True).update(is_default=False)
    card.is_default = True
    card.save(update_fields=["is_default", "updated_at"])
    audit_record(
        actor=acting_user, license=license, action="payments.card_default", target=card.label
    )
    return card


@stripe_budget()
def card_remove(*, license: License, acting_user: User, card: SavedCard) -> None:
    """Detach the card in Stripe, then forget it here; another card becomes the default."""
    if card.license_id != license.pk or card.removed_at is not None:
        raise ApplicationError("That card is not saved on this license.")
    try:
        stripe_client.payment_method_detach(card.payment_method_id)
    except PaymentProviderError as exc:
        raise ApplicationError(f"The card could not be removed: {exc.message}") from exc
    with transaction.atomic():
        PaymentAccount.objects.select_for_update().get(license=license)
        was_default = card.is_default
        card.removed_at = timezone.now()
        card.is_default = False
        card.save(update_fields=["removed_at", "is_default", "updated_at"])
        if was_default:
            other = (
                SavedCard.objects.for_license(license)
                .filter(removed_at__isnull=True)
                .order_by("-created_at")
                .first()
            )
            if other is not None:
                other.is_default = True
                other.save(update_fields=["is_default", "updated_at"])
        audit_record(
            actor=acting_user, license=license, action="payments.card_remove", target=card.label
        )


def default_card(license: License) -> SavedCard | None:
    return (
        SavedCard.objects.for_license(license)
        .filter(is_default=True, removed_at__isnull=True)
        .first()
    )
