from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import License
from portal.models import TenantQuerySet, TimeStampedModel


class SyncStateQuerySet(TenantQuerySet):
    def failing(self) -> "SyncStateQuerySet":
        return self.filter(consecutive_failures__gt=0)

    def healthy(self) -> "SyncStateQuerySet":
        return self.filter(consecutive_failures=0)

    def lagging(self, before: datetime) -> "SyncStateQuerySet":
        """Last complete run before `before`, or never."""
        return self.filter(Q(last_success_at__lt=before) | Q(last_success_at__isnull=True))


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

    objects = SyncStateQuerySet.as_manager()

    class Meta:
        permissions = [("sync_now", "Can start a usage sync from the admin")]

    def __str__(self):
        return f"sync state of {self.license_id}"

    @property
    def is_failing(self) -> bool:
        """The one meaning of "failing": the last run that ended did not reach the end of
        what the upstream had because of an error (a complete run resets the count)."""
        return self.consecutive_failures > 0


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
