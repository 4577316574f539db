"""Charge flags: a customer's question on one charge, with its evidence and the answer."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import License
from billing.ledger.models import LedgerEntry
from portal.models import TenantQuerySet


class ChargeFlag(models.Model):
    """A customer's question on one charge (an API call), answered by the billing team.

    The evidence is copied when the flag is raised, so the answer is judged against what
    the customer saw. One open flag per call: a second waits for the first's answer.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    id = models.BigAutoField(primary_key=True)
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+")
    # The call's first charge (the entry that names the transaction) and its record id.
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="flags")
    record_id = models.CharField(max_length=200)
    message = models.TextField()
    evidence = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    answer = models.TextField(blank=True, default="")
    refund = models.ForeignKey(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notified_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["license", "record_id"],
                condition=Q(status="open"),
                name="flag_one_open_per_charge",
            ),
            models.CheckConstraint(
                condition=Q(status="open") | (Q(resolved_at__isnull=False) & ~Q(answer="")),
                name="flag_resolved_has_answer",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="flag_queue"),
            models.Index(fields=["license", "record_id"], name="flag_license_charge"),
        ]

    def __str__(self) -> str:
        return f"Flag #{self.pk} on {self.record_id} ({self.status})"
