from django.db import migrations, models, transaction

# LicenseBalance.money_entries: the count of a license's purchase, credit and refund
# entries (billing.totals). At 10 M ledger rows: adding a column with a constant default
# is a catalogue change in PostgreSQL 11+ (no rewrite, a brief lock of the small balance
# table only). The backfill runs outside one long transaction (atomic = False): per
# license, it locks that license's balance row the way every posting does
# (billing.ledger.lock_balance) and counts from the daily rollups (DailyRollup.entries,
# kept exact in the posting transaction), which are a few rows a day whatever the number
# of entries; so no posting interleaves with a license's count and nothing scans the
# ledger. `reconcile_ledger` checks the column against the entries like every total.
BACKFILL_SQL = """
UPDATE billing_licensebalance AS b
SET money_entries = (
    SELECT coalesce(sum(r.entries), 0) FROM billing_dailyrollup AS r
    WHERE r.license_id = b.license_id AND r.kind <> 'usage'
)
WHERE b.license_id = %s
"""


def backfill(apps, schema_editor):
    LicenseBalance = apps.get_model("billing", "LicenseBalance")
    connection = schema_editor.connection
    ids = list(LicenseBalance.objects.values_list("license_id", flat=True))
    for license_id in ids:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM billing_licensebalance WHERE license_id = %s FOR UPDATE",
                [license_id],
            )
            cursor.execute(BACKFILL_SQL, [license_id])


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("billing", "0009_purchase_refunds")]

    operations = [
        migrations.AddField(
            model_name="licensebalance",
            name="money_entries",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
