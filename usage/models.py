"""The sync's state: per license (`SyncState`: cursor, failures, owed a sync), the feed's
(`SyncFeed`) and the records refused (`QuarantinedRecord`)."""

from datetime import datetime

from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.expressions import Combinable
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import License
from portal.models import TenantQuerySet, TimeStampedModel

# The one meaning of "failing" (SyncState.is_failing), as a condition for queries.
FAILING = Q(consecutive_failures__gt=0)


def current_as_of(feed_confirmed_at: datetime | Combinable | None) -> Combinable:
    """When a license's usage was last known to be complete, as SQL (SyncState.current_as_of
    says the same in Python): its last complete run; or, when it is owed nothing, not
    failing and synced once, the last time the upstream's feed said it had nothing new.
    The feed's confirmation is a value, or an expression (a subquery reading it in the same
    query; a NULL there is ignored by PostgreSQL's GREATEST, as None is here)."""
    if feed_confirmed_at is None:
        return F("last_success_at")
    confirmed = (
        feed_confirmed_at if isinstance(feed_confirmed_at, Combinable) else Value(feed_confirmed_at)
    )
    return Case(
        When(
            Q(owed_since__isnull=True, last_success_at__isnull=False) & ~FAILING,
            then=Greatest(F("last_success_at"), confirmed),
        ),
        default=F("last_success_at"),
    )


class SyncStateQuerySet(TenantQuerySet):
    def failing(self) -> "SyncStateQuerySet":
        return self.filter(FAILING)

    def healthy(self) -> "SyncStateQuerySet":
        return self.exclude(FAILING)

    def lagging(
        self, before: datetime, feed_confirmed_at: datetime | None = None
    ) -> "SyncStateQuerySet":
        """Usage last known complete before `before` (see current_as_of), or never."""
        return self.alias(as_of=current_as_of(feed_confirmed_at)).filter(
            Q(as_of__lt=before) | Q(as_of__isnull=True)
        )


class SyncState(TimeStampedModel):
    """Where a license's usage sync stands: its cursor and how the last runs went."""

    license = models.OneToOneField(
        License, primary_key=True, on_delete=models.PROTECT, related_name="sync_state"
    )
    cursor = models.CharField(max_length=200, blank=True, default="")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_manual_refresh_at = models.DateTimeField(null=True, blank=True)
    # Failed runs since the last complete one: the scheduled sync backs off on them.
    consecutive_failures = models.IntegerField(default=0)
    records_charged = models.BigIntegerField(default=0)
    records_duplicate = models.BigIntegerField(default=0)
    records_quarantined = models.BigIntegerField(default=0)
    # Set when the upstream's feed names the license (new usage), cleared by the first
    # complete run that started after it: the beat syncs a license only while this is set
    # (or it fails, or never synced), so an idle license costs no request and no write.
    owed_since = models.DateTimeField(null=True, blank=True)

    objects = SyncStateQuerySet.as_manager()
    # SyncFeed.confirmed_at, read in the same query by usage.selectors.sync_state_get.
    feed_confirmed_at: datetime | None = None

    class Meta:
        permissions = [("sync_now", "Can start a usage sync from the admin")]
        indexes = [
            # The beat's "who is owed a sync" reads only these few rows.
            models.Index(
                fields=["owed_since"],
                name="syncstate_owed",
                condition=Q(owed_since__isnull=False),
            ),
        ]

    def __str__(self):
        return f"sync state of {self.license_id}"

    @property
    def is_failing(self) -> bool:
        """The one meaning of "failing": the last run that ended did not reach the end of
        what the upstream had because of an error (a complete run resets the count)."""
        return self.consecutive_failures > 0

    @property
    def known_current_at(self) -> datetime | None:
        """When this license's usage was last known complete ("Last Updated"; None: never),
        with the feed's confirmation read along (usage.selectors.sync_state_get)."""
        return self.current_as_of(self.feed_confirmed_at)

    def current_as_of(self, feed_confirmed_at: datetime | None) -> datetime | None:
        """Python's reading of models.current_as_of (the same rule, for one row)."""
        if (
            feed_confirmed_at is None
            or self.owed_since is not None
            or self.last_success_at is None
            or self.is_failing
        ):
            return self.last_success_at
        return max(self.last_success_at, feed_confirmed_at)


class SyncFeed(TimeStampedModel):
    """Where the beat stands in the upstream's feed of licenses with new usage (one row,
    `name` "upstream"), and the safety sweep's place in the list of licenses."""

    name = models.CharField(max_length=50, primary_key=True, default="upstream")
    cursor = models.CharField(max_length=200, blank=True, default="")
    # When a read of the feed last reached its end (taken before its last page was asked):
    # every license it had not named had nothing new at that moment.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    # The safety sweep syncs every active license once a USAGE_SWEEP_SECONDS, a chunk per
    # beat in id order: the last license id it enqueued.
    sweep_after_id = models.BigIntegerField(default=0)

    def __str__(self):
        return f"feed {self.name} at {self.cursor or '(start)'}"


class QuarantinedRecord(models.Model):
    """An upstream record the sync could not charge, kept raw with the reason.

    `license` is the license whose sync received it (null only if a record ever arrives
    outside a license's sync); the record's own `license` value stays in `raw`. A record
    served again (a repeated page) is kept once: `fingerprint` is the SHA-256 of its
    canonical JSON.
    """

    class Reason(models.TextChoices):
        NOT_AN_OBJECT = "not_an_object", "Not a JSON object"
        MISSING_FIELD = "missing_field", "Missing field"
        BAD_ID = "bad_id", "Bad id"
        UNKNOWN_LICENSE = "unknown_license", "Unknown license"
        BAD_DATE = "bad_date", "Bad date"
        BAD_QUANTITY = "bad_quantity", "Bad token or image count"
        BAD_STATUS = "bad_status", "Bad status"
        BAD_TEXT = "bad_text", "Bad request id or endpoint"
        NO_PRICE = "no_price", "No price in effect"

    id = models.BigAutoField(primary_key=True)
    license = models.ForeignKey(
        License, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    record_id = models.CharField(max_length=200, blank=True, default="")
    raw = models.JSONField()
    fingerprint = models.CharField(max_length=64)
    reason_code = models.CharField(max_length=32, choices=Reason.choices)
    reason = models.TextField()
    cursor = models.CharField(
        max_length=200, blank=True, default="", help_text="The cursor the page was asked after."
    )
    received_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["license", "fingerprint"], name="quarantine_unique_per_license"
            ),
        ]
        indexes = [
            models.Index(fields=["license", "-received_at"], name="quarantine_license_recent"),
        ]

    def __str__(self):
        return f"{self.record_id or '(no id)'}: {self.reason}"
