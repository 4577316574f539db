"""The six movements (billing.ledger.kinds): the stored kind "expiry", and one lifetime total
per movement on LicenseBalance.

- The ledger's kind, sign and service constraints admit `expiry` (negative, no service).
  At 10 M ledger rows: each constraint is dropped and added back NOT VALID in one short
  transaction (a catalogue change: new rows are checked from then on), then validated
  outside it (VALIDATE CONSTRAINT reads the table under a lock that lets postings go on).
- `total_purchase_refunded` and `total_expired`: constant defaults, catalogue changes.
- "Total Purchased" becomes gross (docs/product.md): it was net of refunds to the card.
  Those refunds move to `total_purchase_refunded` and are added back to `total_purchased`;
  goodwill recorded as a refund before the credit kind moves from `total_refunded` (now
  refunds of usage only) to `total_credited`. Both are refunds without a service, the few
  entries the partial index ledger_bare_refunds holds; per license, under its balance row
  lock as every posting takes it (billing.ledger.posting.lock_balance), so no posting
  interleaves. Postings by code older than this migration would still add card refunds
  the old way: deploy with the workers stopped, or run `reconcile_ledger` afterwards
  (any difference it reports is fixed by billing.ledger.rebuild.license_totals_rebuild).
"""

from decimal import Decimal

from django.db import migrations, models, transaction

SERVICES = ["ai_images", "ai_data", "ai_data_cached", "ai_data_completion"]

CONSTRAINTS = (
    models.CheckConstraint(
        condition=models.Q(kind__in=["purchase", "usage", "refund", "credit", "expiry"]),
        name="ledger_kind_valid",
    ),
    models.CheckConstraint(
        condition=(
            models.Q(kind="purchase", amount__gt=0)
            | models.Q(kind="refund", amount__gt=0)
            | models.Q(kind="credit", amount__gt=0)
            | models.Q(kind="refund", amount__lt=0, refund_of__isnull=False, service="")
            | models.Q(kind="usage", amount__lte=0)
            | models.Q(kind="expiry", amount__lt=0)
        ),
        name="ledger_sign_per_kind",
    ),
    models.CheckConstraint(
        condition=(
            models.Q(kind__in=["purchase", "credit", "expiry"], service="")
            | models.Q(kind="usage", service__in=SERVICES)
            | models.Q(kind="refund", service__in=["", *SERVICES])
        ),
        name="ledger_service_per_kind",
    ),
)

KIND_CHOICES = [
    ("purchase", "Purchase"),
    ("usage", "Usage"),
    ("refund", "Refund"),
    ("credit", "Credit"),
    ("expiry", "Expiry"),
]


def constraints_swap(apps, schema_editor):
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    with transaction.atomic(using=schema_editor.connection.alias):
        for constraint in CONSTRAINTS:
            definition = constraint.constraint_sql(LedgerEntry, schema_editor)
            schema_editor.execute(
                f"ALTER TABLE billing_ledgerentry DROP CONSTRAINT {constraint.name}, "
                f"ADD {definition} NOT VALID"
            )
    for constraint in CONSTRAINTS:
        schema_editor.execute(
            f"ALTER TABLE billing_ledgerentry VALIDATE CONSTRAINT {constraint.name}"
        )


TOTALS_SQL = """
UPDATE billing_licensebalance AS b SET
    total_purchased = b.total_purchased + s.card,
    total_purchase_refunded = b.total_purchase_refunded + s.card,
    total_refunded = b.total_refunded - s.goodwill,
    total_credited = b.total_credited + s.goodwill
FROM (
    SELECT coalesce(-sum(amount) FILTER (WHERE amount < 0), 0) AS card,
           coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS goodwill
    FROM billing_ledgerentry
    WHERE license_id = %(license_id)s AND kind = 'refund' AND service = ''
) AS s
WHERE b.license_id = %(license_id)s
"""


def totals_by_movement(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT license_id FROM billing_ledgerentry "
            "WHERE kind = 'refund' AND service = ''"
        )
        license_ids = [row[0] for row in cursor.fetchall()]
    for license_id in license_ids:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM billing_licensebalance WHERE license_id = %s FOR UPDATE",
                [license_id],
            )
            cursor.execute(TOTALS_SQL, {"license_id": license_id})


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("billing", "0015_money_events")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                *(
                    migrations.RemoveConstraint(model_name="ledgerentry", name=c.name)
                    for c in CONSTRAINTS
                ),
                *(
                    migrations.AddConstraint(model_name="ledgerentry", constraint=c)
                    for c in CONSTRAINTS
                ),
            ],
            database_operations=[
                migrations.RunPython(constraints_swap, migrations.RunPython.noop),
            ],
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="kind",
            field=models.CharField(choices=KIND_CHOICES, max_length=16),
        ),
        migrations.AlterField(
            model_name="dailyrollup",
            name="kind",
            field=models.CharField(choices=KIND_CHOICES, max_length=16),
        ),
        migrations.AddField(
            model_name="licensebalance",
            name="total_purchase_refunded",
            field=models.DecimalField(
                db_default=Decimal("0.000000"),
                decimal_places=6,
                default=Decimal("0.000000"),
                max_digits=18,
            ),
        ),
        migrations.AddField(
            model_name="licensebalance",
            name="total_expired",
            field=models.DecimalField(
                db_default=Decimal("0.000000"),
                decimal_places=6,
                default=Decimal("0.000000"),
                max_digits=18,
            ),
        ),
        migrations.RunPython(totals_by_movement, migrations.RunPython.noop),
    ]
