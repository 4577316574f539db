"""API keys and webhooks of a license.

An API key's secret is shown once, when it is made; only its SHA-256 is kept (the secret
is 256 random bits, so a fast hash is enough) and compared in constant time. A webhook
endpoint's signing secret must be kept to sign with; it too is shown only once.
"""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import License
from portal.models import TenantQuerySet, TimeStampedModel


class ApiKey(TimeStampedModel):
    class Scope(models.TextChoices):
        READ = "read", "Read: balance, usage, transactions, statements, history"

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100)
    # "tcp_" + 8 random characters: shown in lists, sent in every key, looked up by index.
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["license", "-created_at"], name="apikey_license_recent")]

    def __str__(self) -> str:
        return f"{self.name} ({self.display})"

    @property
    def display(self) -> str:
        """What lists and messages show of a key: its prefix, never the secret."""
        return f"{self.prefix}_…"

    def is_usable(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


OWNER_SWITCHED_OFF = "Switched off by an owner."


class WebhookEndpoint(TimeStampedModel):
    class Event(models.TextChoices):
        BALANCE_LOW = "balance.low", "balance.low — the balance fell below the alert threshold"
        BALANCE_DEPLETED = "balance.depleted", "balance.depleted — the balance reached zero"
        PURCHASE_SUCCEEDED = "purchase.succeeded", "purchase.succeeded — credits were added"
        PURCHASE_REFUNDED = (
            "purchase.refunded",
            "purchase.refunded — a card purchase was refunded to the card",
        )
        CREDIT_GRANTED = "credit.granted", "credit.granted — promotional or goodwill credit"
        REFUND_ISSUED = "refund.issued", "refund.issued — a usage charge was refunded"
        CREDIT_EXPIRED = "credit.expired", "credit.expired — unused credit expired"
        LIMIT_REACHED = "limit.reached", "limit.reached — calls are refused for a spend limit"
        AUTO_TOPUP_FAILED = "auto_topup.failed", "auto_topup.failed — an automatic top-up failed"
        DISPUTE_UPDATED = "dispute.updated", "dispute.updated — a card dispute opened or changed"

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="webhooks")
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=80)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    # When the current run of failures began (empty while deliveries succeed).
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return self.url

    @property
    def secret_display(self) -> str:
        """The secret's start (the "whsec_" prefix and four characters), never the rest."""
        return f"{self.secret[:10]}…"

    @property
    def state(self) -> str:
        """What the endpoint list says: active, failing (still sent to), switched off by an
        owner, or disabled after failures (api.webhooks)."""
        if self.is_active:
            return "failing" if self.failing_since is not None else "active"
        return "switched off" if self.disabled_reason == OWNER_SWITCHED_OFF else "disabled"


class WebhookEvent(models.Model):
    """Something that happened on a license, owed to its endpoints (one row per event)."""

    id = models.BigAutoField(primary_key=True)
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+")
    public_id = models.CharField(max_length=40, unique=True)  # "evt_…", sent to receivers
    type = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["license", "-created_at"], name="whevent_license_recent")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


class DeliveryOutcome:
    """What a delivery attempt came to, in the plain words the customer's delivery log shows.
    The detail (the exception, what the receiver sent) is for staff: it says which ports of
    the portal's own network answer, and how, so it never reaches a customer's page."""

    DELIVERED = "delivered"
    TIMED_OUT = "timed out"
    NO_CONNECTION = "could not connect"
    REFUSED_ADDRESS = "address not allowed"
    ENDPOINT_OFF = "endpoint switched off"
    PLAIN = (DELIVERED, TIMED_OUT, NO_CONNECTION, REFUSED_ADDRESS, ENDPOINT_OFF)

    @staticmethod
    def answered(status: int) -> str:
        return f"answered {status}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Gave up"

    id = models.BigAutoField(primary_key=True)
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+")
    event = models.ForeignKey(WebhookEvent, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="whdelivery_once"),
        ]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="whdelivery_endpoint_recent"),
            # The sweeper's "due" query reads only pending rows.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="whdelivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id}: {self.status}"

    @property
    def outcome(self) -> str:
        """The last attempt's outcome for the customer ("answered 500", "timed out"…); staff
        read `last_error`, which begins with it and goes on with the detail."""
        if self.attempts == 0 and not self.last_error:
            return ""
        if self.last_status_code is not None:
            if 200 <= self.last_status_code < 300:
                return DeliveryOutcome.DELIVERED
            return DeliveryOutcome.answered(self.last_status_code)
        plain = self.last_error.split(" (", 1)[0]
        return plain if plain in DeliveryOutcome.PLAIN else "failed"
