"""The customer's documents: billing details per license (who the documents are made out
to), the numbered invoices and credit notes issued for purchases and their refunds, and
the counter rows their gap-free numbers come from."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import License
from billing.ledger.models import LedgerEntry
from portal.models import TenantQuerySet


class BillingDetails(models.Model):
    """Who a license's documents are made out to, kept by its owners. A document copies
    them when it is issued (`Document.billed_to`): a later change never alters it."""

    license = models.OneToOneField(
        License, primary_key=True, on_delete=models.PROTECT, related_name="billing_details"
    )
    legal_name = models.CharField(max_length=200, blank=True)
    address = models.TextField(max_length=1000, blank=True)
    country = models.CharField(max_length=2, blank=True)  # ISO 3166-1 alpha-2
    tax_id = models.CharField(max_length=32, blank=True)  # normalized: no spaces or dots
    po_number = models.CharField(max_length=200, blank=True)  # a PO number or a note
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"billing details of {self.license_id}"


class DocumentSeries(models.Model):
    """A series' counter ("INV-2026"): its row is locked FOR UPDATE in the transaction that
    posts the purchase or refund, so a number is taken only by a document that commits."""

    series = models.CharField(max_length=20, primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.series}: {self.last_number}"


class Document(models.Model):
    """An invoice (for a purchase) or a credit note (for a purchase refund), issued once in
    its ledger entry's transaction and never changed afterwards (only `emailed_at`)."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="documents")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    series = models.CharField(max_length=20)
    sequence = models.PositiveIntegerField()
    number = models.CharField(max_length=32, unique=True)  # "INV-2026-000001"
    # The ledger refuses deleting an entry itself (append-only); the foreign key still holds.
    entry = models.OneToOneField(LedgerEntry, on_delete=models.DO_NOTHING, related_name="document")
    invoice = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    issued_at = models.DateTimeField()
    billed_to = models.JSONField(default=dict)  # BillingDetails as they were at issue
    lines = models.JSONField(default=list)  # [{"description", "amount_cents"}], before tax
    net_cents = models.BigIntegerField()
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2)  # percent
    tax_label = models.CharField(max_length=20, blank=True)
    tax_cents = models.BigIntegerField()
    total_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    payment_method = models.CharField(max_length=200)
    emailed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "sequence"], name="document_series_sequence"),
            models.CheckConstraint(
                condition=models.Q(total_cents=models.F("net_cents") + models.F("tax_cents")),
                name="document_total_is_net_plus_tax",
            ),
        ]
        indexes = [models.Index(fields=["license", "issued_at"])]

    def __str__(self) -> str:
        return self.number
