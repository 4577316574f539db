"""Spend limits and the gate's holds: what a license may spend through the gate
(billing.limits.gate), and the authorizations it has answered."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import License
from billing.ledger.models import money_field
from billing.money import ZERO
from portal.models import TenantQuerySet


class SpendLimit(models.Model):
    """A license's spend limits, read by the gate on every authorization (no row: stop at
    $0.00, no monthly cap). The row is also what the gate locks to decide one license's
    authorizations one at a time, so it exists once the gate has been asked.

    - `floor` (≤ 0): the gate allows spending down to it; 0 stops at $0.00. Below zero only
      as far as staff approved (`overdraft_approved`, ≥ 0): owners choose within it.
    - `monthly_cap` (> 0, or none): usage in the license's local month, plus what is held,
      may not pass it.
    - `floor_level`, `cap_level`: whether the gate has announced that limit reached
      (billing.events.crossing's level: 0 armed, 1 announced).
    """

    license = models.OneToOneField(
        License, primary_key=True, on_delete=models.PROTECT, related_name="spend_limit"
    )
    floor = money_field(default=ZERO)
    overdraft_approved = money_field(default=ZERO)
    overdraft_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    monthly_cap = money_field(null=True, blank=True)
    floor_level = models.SmallIntegerField(default=0)
    cap_level = models.SmallIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        permissions = [
            ("approve_overdraft", "Can set spend limits and allow spending below zero"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(floor__lte=0), name="spendlimit_floor_not_positive"),
            models.CheckConstraint(
                condition=Q(overdraft_approved__gte=0), name="spendlimit_overdraft_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(floor__gte=-models.F("overdraft_approved")),
                name="spendlimit_floor_within_approval",
            ),
            models.CheckConstraint(
                condition=Q(monthly_cap__isnull=True) | Q(monthly_cap__gt=0),
                name="spendlimit_cap_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"spend limits of {self.license_id}"


class GateHold(models.Model):
    """One answer of the gate, for one request id of a license.

    Allowed: its `estimate` is held against the license's available credit until the usage
    record with that request id posts (`released_at`, set in the posting's transaction) or
    `expires_at` passes. Refused: nothing held. Either way the row is the answer the same
    request id gets again (one hold, the same answer) until it is pruned, a while after it
    expires (billing.limits.holds.gate_holds_prune)."""

    id = models.BigAutoField(primary_key=True)
    # Served by gatehold_request (license, request_id).
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+", db_index=False)
    request_id = models.CharField(max_length=100)
    estimate = money_field()
    allowed = models.BooleanField()
    reason = models.CharField(max_length=32, blank=True, default="")
    available = money_field()  # what the answer said was still available after it
    decided_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["license", "request_id"], name="gatehold_request"),
            models.CheckConstraint(condition=Q(estimate__gt=0), name="gatehold_estimate_positive"),
        ]
        indexes = [
            # What is held now: the open holds of a license (summed on every authorization).
            models.Index(
                fields=["license", "expires_at"],
                include=["estimate"],
                name="gatehold_open",
                condition=Q(allowed=True, released_at__isnull=True),
            ),
            # Pruning answers long expired.
            models.Index(fields=["expires_at"], name="gatehold_expiry"),
        ]

    def __str__(self) -> str:
        verdict = "allowed" if self.allowed else f"refused ({self.reason})"
        return f"{self.request_id}: {self.estimate} {verdict}"
