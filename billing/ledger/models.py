"""The ledger's tables: entries (append-only), each license's balance and totals, and the
daily rollups kept exact with them in the posting transaction."""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from accounts.models import License
from billing.ledger.kinds import Movement, movement_of
from billing.money import (
    MONEY_MAX_DIGITS,
    MONEY_PLACES,
    ZERO,
)
from portal.models import TenantQuerySet


class Service(models.TextChoices):
    AI_IMAGES = "ai_images", "ai_images"
    AI_DATA = "ai_data", "ai_data"
    AI_DATA_CACHED = "ai_data_cached", "ai_data_cached"
    AI_DATA_COMPLETION = "ai_data_completion", "ai_data_completion"


def money_field(**kwargs: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_PLACES, **kwargs)


class LedgerQuerySet(TenantQuerySet):
    def history_of(self, license: License | int) -> "LedgerQuerySet":
        """The license's entries, to be read in the order of the index ledger_license_recent
        (license, -occurred_at, -id): order them by NEWEST_FIRST or OLDEST_FIRST.

        The license is a range of one (license_id >= X AND license_id <= X), not `= X`: an
        equality makes license_id a constant to the planner, and then the global index
        ledger_recent (-occurred_at, -id) gives the same order; PostgreSQL took it, filtered
        by license, whenever its statistics made the license look like much of the ledger,
        and read every newer entry of every other license to find the page (811 ms for the
        last hundred of a license whose entries were older than 541,800 others', against
        0.1 ms; tests/portal/test_plans_without_statistics.py). With license_id in the ORDER
        BY only ledger_license_recent gives the order; portal.plans keeps the planner from
        sorting instead."""
        pk = license if isinstance(license, int) else license.pk
        return self.filter(license_id__gte=pk, license_id__lte=pk)


# A license's history in index order (LedgerQuerySet.history_of), newest or oldest first.
NEWEST_FIRST = ("license_id", "-occurred_at", "-id")
OLDEST_FIRST = ("-license_id", "occurred_at", "id")


class LedgerEntry(models.Model):
    """One immutable money movement on a license. Credit is +, debit is −.

    A purchase is +, usage is −, a refund of a usage charge (or goodwill) is +, a refund
    of a purchase (money back to the customer's card) is −, and an expiry (a grant's
    unused remainder leaving the balance, billing.credits) is −. Which of the six movements
    an entry is (billing.ledger.kinds) is `movement`, read from the row.

    Written only through the posting engine (billing.ledger.posting); the database refuses UPDATE and DELETE.
    """

    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        USAGE = "usage", "Usage"
        REFUND = "refund", "Refund"
        # Goodwill or promotional credit: money given, not a refund of a charge.
        CREDIT = "credit", "Credit"
        # A credit grant's unused remainder at its expiry (billing.credits.expiry).
        EXPIRY = "expiry", "Expiry"

    id = models.BigAutoField(primary_key=True)
    # No single-column index: every license query is served by the composite indexes
    # below, and each index is paid for on every insert into the biggest table.
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    service = models.CharField(max_length=32, choices=Service.choices, blank=True, default="")
    amount = money_field()
    tokens = models.BigIntegerField(default=0)
    images = models.BigIntegerField(default=0)
    api_calls = models.SmallIntegerField(default=0)
    description = models.CharField(max_length=500, blank=True, default="")
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    # Set only on an entry dated inside a closed month when it was posted (a late upstream
    # record, a back-dated correction): it keeps that original time (the call's time) while
    # occurred_at is when it was posted, in the open month (billing.ledger.post_entries).
    original_occurred_at = models.DateTimeField(null=True, blank=True)
    external_id = models.CharField(max_length=200)
    # A usage charge's API call, as the upstream reported it (the same on every entry of
    # the call). Empty on other kinds, and on usage recorded before migration 0006: the
    # ledger is append-only, so those keep it only in `description` (billing.calls).
    request_id = models.CharField(max_length=100, blank=True, default="", db_default="")
    endpoint = models.CharField(max_length=200, blank=True, default="", db_default="")
    status = models.CharField(max_length=32, blank=True, default="", db_default="")
    # refund_of and created_by are NULL on almost every row (usage): their indexes are
    # partial (Meta.indexes), so the hot insert path does not maintain them.
    refund_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refunds",
        db_index=False,
    )
    reason = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )

    objects = LedgerQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "ledger entries"
        permissions = [
            ("issue_refund", "Can issue refunds and goodwill credits"),
            ("record_purchase", "Can record purchases"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["license", "external_id"], name="ledger_external_id_unique"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["purchase", "usage", "refund", "credit", "expiry"]),
                name="ledger_kind_valid",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="purchase", amount__gt=0)
                    | Q(kind="refund", amount__gt=0)
                    | Q(kind="credit", amount__gt=0)
                    # A refund of a card purchase returns money to the card: it takes
                    # credit away (negative), and only ever against a purchase (the
                    # refund guard trigger checks what refund_of is).
                    | Q(kind="refund", amount__lt=0, refund_of__isnull=False, service="")
                    | Q(kind="usage", amount__lte=0)
                    | Q(kind="expiry", amount__lt=0)
                ),
                name="ledger_sign_per_kind",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["purchase", "credit", "expiry"], service="")
                    | Q(kind="usage", service__in=[s.value for s in Service])
                    | Q(kind="refund", service__in=["", *[s.value for s in Service]])
                ),
                name="ledger_service_per_kind",
            ),
            models.CheckConstraint(
                condition=Q(refund_of__isnull=True) | Q(kind="refund"),
                name="ledger_refund_of_only_refunds",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["refund", "credit"]) | ~Q(reason=""),
                name="ledger_refund_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(tokens__gte=0, images__gte=0, api_calls__in=[0, 1]),
                name="ledger_counts_valid",
            ),
        ]
        indexes = [
            # Recent history and the CSV export: newest first, keyset-paged.
            models.Index(fields=["license", "-occurred_at", "-id"], name="ledger_license_recent"),
            # The staff admin's list across all licenses (newest first) and its date range.
            models.Index(fields=["-occurred_at", "-id"], name="ledger_recent"),
            # Refunds of a charge (the refund ceiling) and the PROTECT checks.
            models.Index(
                fields=["refund_of"],
                condition=Q(refund_of__isnull=False),
                name="ledger_refunds_of_charge",
            ),
            # Search by request id: one index row per API call (its first entry).
            models.Index(
                fields=["license", "request_id"],
                condition=Q(api_calls=1) & ~Q(request_id=""),
                name="ledger_call_request_id",
            ),
            # A month's refunds without a service (refunds of a card purchase, and goodwill
            # recorded before the credit kind): the rollups sum both in one row, so the
            # statement (billing.month_figures) reads these few entries to tell them apart.
            models.Index(
                fields=["license", "occurred_at"],
                condition=Q(kind="refund", service=""),
                name="ledger_bare_refunds",
            ),
            models.Index(
                fields=["created_by"],
                condition=Q(created_by__isnull=False),
                name="ledger_created_by",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.kind} {self.amount} ({self.license_id})"

    @property
    def movement(self) -> Movement:
        """Which of the six movements this entry is (billing.ledger.kinds)."""
        return movement_of(self.kind, self.amount, self.service)


class LicenseBalance(models.Model):
    """A license's balance and lifetime totals, kept equal to the sum of its entries.

    Updated only in the transaction that posts the entries, with this row locked.
    """

    license = models.OneToOneField(
        License, primary_key=True, on_delete=models.PROTECT, related_name="balance"
    )
    balance = money_field(default=ZERO)
    # One lifetime total per movement (billing.ledger.totals), each a size (≥ 0):
    # balance = purchased − purchase_refunded + credited + refunded − spent − expired.
    # Gross of card refunds (migration billing.0016 added them back).
    total_purchased = money_field(default=ZERO)
    total_purchase_refunded = money_field(default=ZERO, db_default=ZERO)
    total_spent = money_field(default=ZERO)
    # Refunds of usage charges.
    total_refunded = money_field(default=ZERO)
    # Goodwill and promotional credit (and goodwill recorded as a refund before the kind).
    total_credited = money_field(default=ZERO, db_default=ZERO)
    total_expired = money_field(default=ZERO, db_default=ZERO)
    api_calls = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    images = models.BigIntegerField(default=0)
    # Usage spending on ai_images (positive). The dashboard's image/text breakdown reads it
    # here instead of summing every day's rollup, which would grow with the history's length;
    # text spending is total_spent - images_spent (every usage entry has one of the services).
    images_spent = money_field(default=ZERO)
    entries = models.BigIntegerField(default=0)
    # Purchases, credits, refunds and expiries (entries of any kind but usage); Total
    # Transactions is api_calls + money_entries.
    money_entries = models.BigIntegerField(default=0, db_default=0)
    updated_at = models.DateTimeField(default=timezone.now)
    # Which low-balance email has gone out since the balance was last at or above the
    # threshold (see billing.alerts): a line crossed is announced once.
    alert_level = models.SmallIntegerField(default=0)
    # Alerts are never sent for movements older than this: the alert settings' last change,
    # or when the license's first movement was posted. A backfill replaying history (the
    # first sync, the demo seed) is not news to announce.
    alerts_since = models.DateTimeField(default=timezone.now, db_default=Now())
    # Whether EndpointDailyRollup covers this license's whole history. A license starts
    # with none (so its rows cover everything from the first posting on); a license that
    # had entries when the table was added gets False (migration 0014) until
    # rollups_rebuild fills its rows under its balance lock.
    endpoint_rollups_ready = models.BooleanField(default=True, db_default=True)

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.license_id}: {self.balance}"

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.cached_tokens + self.completion_tokens

    @property
    def has_activity(self) -> bool:
        return self.total_transactions > 0

    def warns_low_balance(self, threshold: Decimal) -> bool:
        """Below the threshold after some activity: the dashboard's flashing warning and the
        license list's "Low balance". A new license, which never had money, is not warned
        about it (it is welcomed with "Purchase Credits")."""
        return self.has_activity and self.balance < threshold

    @property
    def total_transactions(self) -> int:
        """The guide's Total Transactions: one per API call (however many service entries it
        became), purchase, credit and refund."""
        return self.api_calls + self.money_entries


class RollupSums(models.Model):
    """What a rollup row adds up of the entries it covers (billing.ledger keeps them)."""

    amount = money_field(default=ZERO)
    tokens = models.BigIntegerField(default=0)
    images = models.BigIntegerField(default=0)
    api_calls = models.BigIntegerField(default=0)
    entries = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


# The sums' column names, for the SQL that keeps and checks them (billing.ledger,
# billing.reconciliation).
ROLLUP_SUMS = tuple(f.name for f in RollupSums._meta.local_fields)


class DailyRollup(RollupSums):
    """Per license, local day (the license's timezone), kind and service: sums of entries.

    Kept in the same transaction as the entries it sums, so it is exact. Purchases and
    goodwill refunds have service "".
    """

    id = models.BigAutoField(primary_key=True)
    # Served by rollup_unique_key (license, day, kind, service).
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+", db_index=False)
    day = models.DateField()
    kind = models.CharField(max_length=16, choices=LedgerEntry.Kind.choices)
    service = models.CharField(max_length=32, blank=True, default="")

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["license", "day", "kind", "service"], name="rollup_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.license_id} {self.day} {self.kind} {self.service}: {self.amount}"


class EndpointDailyRollup(RollupSums):
    """Usage per license, local day, endpoint and service: the usage explorer's "by endpoint".

    Usage entries only (refunds and credits are not calls). Kept by the same posting
    statement as DailyRollup (billing.ledger.post_entries), so it is exact too; the
    endpoint is the entry's `endpoint` column ("" when none was recorded). Added after the
    ledger had history: LicenseBalance.endpoint_rollups_ready says whether a license's
    rows cover its whole history yet (migration 0014, `manage.py rebuild_rollups`).
    """

    id = models.BigAutoField(primary_key=True)
    # Served by endpoint_rollup_unique_key (license, day, endpoint, service).
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+", db_index=False)
    day = models.DateField()
    endpoint = models.CharField(max_length=200, blank=True, default="")
    service = models.CharField(max_length=32)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["license", "day", "endpoint", "service"],
                name="endpoint_rollup_unique_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.license_id} {self.day} {self.endpoint} {self.service}: {self.amount}"
