"""Card payments through Stripe: the license's Stripe customer and auto top-up rule, its
saved cards, each payment (one PaymentIntent the portal created, credited at most once),
every verified webhook event, and disputes."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import License
from billing.models import LedgerEntry, money_field
from billing.money import ZERO
from portal.models import TenantQuerySet, TimeStampedModel

# The external id of the purchase a card payment credits is this and its PaymentIntent's id
# ("pi:pi_3N…"): how a card purchase is told from one the billing team recorded by hand.
CARD_PURCHASE_PREFIX = "pi:"


class PaymentAccount(TimeStampedModel):
    """A license's Stripe customer and its owner's auto top-up rule with its guardrails."""

    license = models.OneToOneField(
        License, on_delete=models.PROTECT, primary_key=True, related_name="payment_account"
    )
    stripe_customer_id = models.CharField(max_length=255, blank=True, default="")
    auto_topup_enabled = models.BooleanField(default=False)
    auto_topup_threshold = money_field(default=ZERO)
    auto_topup_amount = money_field(default=ZERO)
    auto_topup_monthly_count = models.PositiveSmallIntegerField(default=5)
    auto_topup_monthly_amount = money_field(default=ZERO)
    # False from the top-up a crossing started until the balance is back at or above the
    # threshold: one crossing, one top-up.
    auto_topup_armed = models.BooleanField(default=True)
    auto_topup_failures = models.PositiveSmallIntegerField(default=0)
    auto_topup_disabled_reason = models.CharField(max_length=300, blank=True, default="")

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_customer_id"],
                condition=~Q(stripe_customer_id=""),
                name="payment_account_customer_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.license_id}: {self.stripe_customer_id or 'no Stripe customer'}"


class SavedCard(TimeStampedModel):
    """A card saved to the license's Stripe customer (through a SetupIntent)."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+")
    payment_method_id = models.CharField(max_length=255, unique=True)
    brand = models.CharField(max_length=32, blank=True, default="")
    last4 = models.CharField(max_length=4, blank=True, default="")
    exp_month = models.PositiveSmallIntegerField(default=0)
    exp_year = models.PositiveSmallIntegerField(default=0)
    is_default = models.BooleanField(default=False)
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["license"],
                condition=Q(is_default=True, removed_at__isnull=True),
                name="saved_card_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.brand.title() or 'Card'} •••• {self.last4}"


class Payment(TimeStampedModel):
    """One card payment: a PaymentIntent the portal created for this license, with the
    amount it asked for, stored before Stripe is called. Credited once, as one purchase
    entry (`ledger_entry`, external id "pi:<intent id>")."""

    class Status(models.TextChoices):
        CREATED = "created", "Created"  # stored, Stripe not called yet (or no answer)
        REQUIRES_ACTION = "requires_action", "Needs authentication"
        PROCESSING = "processing", "Processing"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        PURCHASE = "purchase", "Purchase Credits"
        AUTO_TOPUP = "auto_topup", "Auto top-up"

    id = models.BigAutoField(primary_key=True)
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+")
    intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    amount = money_field()
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    captured_cents = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CREATED)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.PURCHASE)
    payment_method_id = models.CharField(max_length=255, blank=True, default="")
    card_brand = models.CharField(max_length=32, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")
    client_secret = models.CharField(max_length=255, blank=True, default="")
    ledger_entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="payment"
    )
    receipt_number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    credited_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(ledger_entry__isnull=True) | Q(status="succeeded"),
                name="payment_credited_only_when_succeeded",
            ),
        ]
        indexes = [
            models.Index(fields=["license", "-created_at"], name="payment_license_recent"),
        ]

    def __str__(self) -> str:
        return f"Payment #{self.pk} {self.amount} {self.status} ({self.intent_id or 'no intent'})"

    @property
    def card_label(self) -> str:
        return (
            f"{self.card_brand.title() or 'Card'} •••• {self.card_last4}" if self.card_last4 else ""
        )


class StripeEvent(models.Model):
    """Every webhook event whose signature verified, once per event id, and what it did.
    `needs_attention` marks what staff should look at (an intent the portal did not
    create, another license's intent, a changed amount, a dispute)."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=500, blank=True, default="")
    needs_attention = models.BooleanField(default=False)
    license = models.ForeignKey(
        License, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payload = models.JSONField()

    class Meta:
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(processed_at__isnull=True),
                name="stripe_event_unprocessed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class Dispute(TimeStampedModel):
    """A chargeback the card holder opened on a payment, and its outcome."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    dispute_id = models.CharField(max_length=255, unique=True)
    amount_cents = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=40, blank=True, default="")
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Dispute {self.dispute_id} on payment #{self.payment_id}: {self.status}"


class PaymentRefund(TimeStampedModel):
    """A billing-team refund of a card payment, by the form's idempotency key: stored
    before Stripe is called, so a double submit refunds once even when the provider ignores
    idempotency keys (localstripe does)."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    idempotency_key = models.CharField(max_length=100, unique=True)
    amount = money_field()
    refund_id = models.CharField(max_length=255, blank=True, default="")
    ledger_entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Refund {self.refund_id or '(pending)'} of payment #{self.payment_id}"
