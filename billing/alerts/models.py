"""Low-balance alerts owed and sent."""

from django.db import models
from django.utils import timezone

from accounts.models import License
from billing.ledger.models import money_field
from portal.models import TenantQuerySet


class BalanceAlert(models.Model):
    """A low-balance email owed to a license's recipients: one per line crossed."""

    class Kind(models.TextChoices):
        LOW = "low", "Below threshold"
        ZERO = "zero", "At or below zero"

    id = models.BigAutoField(primary_key=True)
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    balance = money_field()
    threshold = money_field()
    crossed_at = models.DateTimeField(default=timezone.now)
    recipients = models.JSONField(default=list)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    objects = TenantQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["license", "-crossed_at"], name="alert_license_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} alert for {self.license_id} at {self.crossed_at:%Y-%m-%d %H:%M}"
