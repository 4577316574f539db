"""Credit approvals: the request for a large credit that a second Billing member decides."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import License
from billing.ledger.models import LedgerEntry, money_field
from billing.money import (
    format_money,
)
from portal.models import TenantQuerySet


class CreditApproval(models.Model):
    """A goodwill credit or a purchase recorded by hand above CREDIT_APPROVAL_LIMIT, waiting
    for a second Billing member (four eyes; billing.approvals). Approving posts the credit
    once, and the entry is kept here; rejecting keeps the reason. The requester never
    decides their own request: the database refuses it too."""

    class Kind(models.TextChoices):
        GOODWILL = "goodwill", "Goodwill credit"
        PURCHASE = "purchase", "Purchase"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    id = models.BigAutoField(primary_key=True)
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = money_field()
    # Goodwill: why, shown to the customer. Purchase: the payment reference and the
    # description the customer sees.
    reason = models.TextField(blank=True, default="")
    external_id = models.CharField(max_length=200, blank=True, default="")
    description = models.CharField(max_length=500, blank=True, default="")
    # What makes a double submit one request: the goodwill form's idempotency key, or
    # "purchase:<payment reference>". Approval posts the credit under it.
    key = models.CharField(max_length=220)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True, default="")
    entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_approval_positive"),
            models.CheckConstraint(
                condition=Q(kind__in=["goodwill", "purchase"]), name="credit_approval_kind"
            ),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="credit_approval_four_eyes",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="pending", decided_at__isnull=True, entry__isnull=True)
                    | Q(status="approved", decided_at__isnull=False, entry__isnull=False)
                    | (
                        Q(status="rejected", decided_at__isnull=False, entry__isnull=True)
                        & ~Q(rejection_reason="")
                    )
                ),
                name="credit_approval_status_valid",
            ),
            # A double submit is one request; after a rejection the same payment
            # reference may be asked for again (with the amount corrected).
            models.UniqueConstraint(
                fields=["license", "key"],
                condition=~Q(status="rejected"),
                name="credit_approval_key_once",
            ),
        ]
        indexes = [models.Index(fields=["status", "requested_at"], name="credit_approval_queue")]

    def __str__(self) -> str:
        return (
            f"{self.get_kind_display()} #{self.pk} of {format_money(self.amount)} "
            f"({self.get_status_display().lower()})"
        )
