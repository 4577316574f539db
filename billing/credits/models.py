"""Credit: the grants a license's balance is made of (paid and promotional, with an optional
expiry, and how much of each is left), their daily rollups, and the request for a large
credit that a second Billing member decides."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import License
from billing.ledger.models import LedgerEntry, money_field
from billing.money import (
    ZERO,
    format_money,
)
from portal.models import TenantQuerySet


class GrantKind(models.TextChoices):
    """Paid credit was bought (a purchase); promotional credit was given (goodwill,
    promotions, sign-up credit). Usage consumes promotional credit first (docs/product.md)."""

    PAID = "paid", "Paid credit"
    PROMOTIONAL = "promotional", "Promotional credit"


class CreditGrant(models.Model):
    """Credit on a license: one per entry that brings credit in — a purchase (paid), a
    credit (promotional), and, rarely, a usage refund that no open grant could take back
    (promotional: billing.credits.grants). Kept by the posting engine in the transaction
    that posts the entry, with the license's balance row locked, like the rollups.

    What is left of it (`remaining`) is what was granted less what usage consumed, what
    was refunded to the card and what expired. Invariant 13: the remainders of a license's
    grants add up to its balance when the balance is positive, and are all zero otherwise.
    An expired grant (`expired_at`) has nothing left: its remainder left the balance as one
    `expiry` entry (`expiry_entry`, external id "expiry:<grant id>"), or none was left.
    """

    Kind = GrantKind

    id = models.BigAutoField(primary_key=True)
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=GrantKind.choices)
    # The entry that brought the credit in (a purchase, a credit, a usage refund). Entries
    # are never deleted: the ledger's trigger refuses it and says so (DO_NOTHING leaves the
    # refusal to it; the foreign key still holds in the database).
    entry = models.OneToOneField(LedgerEntry, on_delete=models.DO_NOTHING, related_name="grant")
    amount = money_field()
    consumed = money_field(default=ZERO)
    # Refunded to the card (paid grants: refunds of the purchase).
    refunded = money_field(default=ZERO)
    expired = money_field(default=ZERO)
    remaining = models.GeneratedField(
        expression=F("amount") - F("consumed") - F("refunded") - F("expired"),
        output_field=money_field(),
        db_persist=True,
    )
    granted_at = models.DateTimeField()
    # None: never expires (paid credit, unless a date is given).
    expires_at = models.DateTimeField(null=True, blank=True)
    # When the expiry run closed it (its remainder left the balance, if any was left).
    expired_at = models.DateTimeField(null=True, blank=True)
    expiry_entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+"
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["paid", "promotional"]), name="credit_grant_kind"
            ),
            models.CheckConstraint(
                condition=Q(
                    amount__gt=0,
                    consumed__gte=0,
                    refunded__gte=0,
                    expired__gte=0,
                    amount__gte=F("consumed") + F("refunded") + F("expired"),
                ),
                name="credit_grant_amounts",
            ),
            models.CheckConstraint(
                condition=(
                    Q(expired_at__isnull=True, expired=0, expiry_entry__isnull=True)
                    | Q(
                        expired_at__isnull=False,
                        expires_at__isnull=False,
                        amount=F("consumed") + F("refunded") + F("expired"),
                        expired=0,
                        expiry_entry__isnull=True,
                    )
                    | Q(
                        expired_at__isnull=False,
                        expires_at__isnull=False,
                        amount=F("consumed") + F("refunded") + F("expired"),
                        expired__gt=0,
                        expiry_entry__isnull=False,
                    )
                ),
                name="credit_grant_expiry",
            ),
        ]
        indexes = [
            # What usage consumes: the license's grants with something left (a few rows
            # whatever the history), read by every posting.
            models.Index(
                fields=["license"], condition=Q(remaining__gt=0), name="credit_grant_open"
            ),
            # What the expiry run closes next.
            models.Index(
                fields=["expires_at"],
                condition=Q(expired_at__isnull=True, expires_at__isnull=False),
                name="credit_grant_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}: {format_money(self.amount)}"


class GrantDailyRollup(models.Model):
    """Per license, local day (the license's timezone) and grant kind: credit granted,
    consumed by usage (net of what usage refunds gave back), refunded to the card and
    expired. Kept in the posting transaction with the grants (billing.credits.grants), so
    their sums are always the grants' own; a month's grant figures and the paid balance
    outstanding come from here, never from the entries.

    Granted, refunded and expired are dated by their entry; consumption when it is posted
    (the ledger's recorded time: a month's usage posted late is consumed in the month it
    was posted, which is always open)."""

    id = models.BigAutoField(primary_key=True)
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+", db_index=False)
    day = models.DateField()
    kind = models.CharField(max_length=16, choices=GrantKind.choices)
    granted = money_field(default=ZERO)
    consumed = money_field(default=ZERO)
    refunded = money_field(default=ZERO)
    expired = money_field(default=ZERO)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["license", "day", "kind"], name="grant_rollup_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.license_id} {self.day} {self.kind}"


# The rollup's sums (GrantDailyRollup's money columns), for the SQL that keeps and checks them.
GRANT_SUMS = ("granted", "consumed", "refunded", "expired")


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
    # When the credit's grant expires (None: never), given when it was asked for.
    expires_at = models.DateTimeField(null=True, blank=True)

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
