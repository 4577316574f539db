from django.db import models

from accounts.models import License
from portal.models import TenantQuerySet, TimeStampedModel


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
    records_charged = models.BigIntegerField(default=0)
    records_duplicate = models.BigIntegerField(default=0)
    records_quarantined = models.BigIntegerField(default=0)

    objects = TenantQuerySet.as_manager()

    def __str__(self):
        return f"sync state of {self.license_id}"
