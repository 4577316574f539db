"""Closed months: a reconciled month no posting may enter again."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ClosedMonth(models.Model):
    """A reconciled month that no posting may enter again (invariant 11).

    Closing month M closes every moment before the end of M in each license's timezone:
    `billing.ledger.post_entries` dates an entry that would fall there at the moment it is
    posted instead (keeping the original time in `original_occurred_at`). `figures` holds
    the reconciliation as it was at the close, per license and in total, so the page can
    show that nothing moved since. Reopening (a superuser, with a reason) sets `reopened_*`;
    the row stays as history.
    """

    id = models.BigAutoField(primary_key=True)
    month = models.DateField(help_text="The first day of the month.")
    closed_at = models.DateTimeField(default=timezone.now)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    figures = models.JSONField(default=dict)
    reopened_at = models.DateTimeField(null=True, blank=True)
    reopened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reopen_reason = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["month"], condition=Q(reopened_at__isnull=True), name="closed_month_once"
            ),
            models.CheckConstraint(condition=Q(month__day=1), name="closed_month_first_day"),
            models.CheckConstraint(
                condition=Q(reopened_at__isnull=True) | ~Q(reopen_reason=""),
                name="closed_month_reopen_has_reason",
            ),
        ]
        permissions = [("close_month", "Can close a reconciled month")]

    def __str__(self) -> str:
        return f"{self.month:%B %Y}{' (reopened)' if self.reopened_at else ''}"
