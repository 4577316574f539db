"""Money events: what happened to money, one row each, written in the transaction that made
it happen (an outbox), and each consumer's cursor over them (billing.events.consumers)."""

from django.db import models
from django.db.models import Func
from django.utils import timezone

from accounts.models import License
from portal.models import TenantQuerySet


class CurrentTransactionId(Func):
    """The writing transaction's id, as a bigint: PostgreSQL's 64-bit `pg_current_xact_id()`
    (the top-level transaction's, also inside a savepoint), which never wraps around."""

    template = "pg_current_xact_id()::text::bigint"
    arity = 0
    output_field = models.BigIntegerField()


class MoneyEvent(models.Model):
    """One thing that happened to a license's money: a usage page charged, a purchase, a
    refund or credit, a low-balance line crossed, a top-up that failed, a dispute changed.

    `type` is a name its writer owns (billing.events.types, payments.event_types); `data` holds
    plain JSON (amounts as 6-place strings, times as RFC 3339). Consumers read events in
    (xact_id, id) order, and only once every transaction that could still add one before
    them has finished (billing.events.consumers explains why the id alone is not enough)."""

    id = models.BigAutoField(primary_key=True)
    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    # Set by the database from the writing transaction, never by the caller.
    xact_id = models.BigIntegerField(db_default=CurrentTransactionId(), editable=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["xact_id", "id"], name="money_event_order")]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk} of license {self.license_id}"


class MoneyEventCursor(models.Model):
    """How far one consumer has read: the (xact_id, id) of the last event it finished,
    moved in the same transaction as the consumer's own writes."""

    name = models.CharField(max_length=100, primary_key=True)
    xact_id = models.BigIntegerField(default=0)
    event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at ({self.xact_id}, {self.event_id})"
