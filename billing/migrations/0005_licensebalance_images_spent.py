from decimal import Decimal

from django.db import migrations, models

# Existing balances take their image spending from the daily rollups, which equal the
# ledger (invariant 1): one pass over the rollups, not over the ledger. A difference would
# show in reconcile_ledger, which compares images_spent with the entries.
FILL_FROM_ROLLUPS = """
UPDATE billing_licensebalance AS b
SET images_spent = r.spent
FROM (
    SELECT license_id, -sum(amount) AS spent
    FROM billing_dailyrollup
    WHERE kind = 'usage' AND service = 'ai_images'
    GROUP BY license_id
) AS r
WHERE r.license_id = b.license_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_licensebalance_alert_level_balancealert"),
    ]

    operations = [
        migrations.AddField(
            model_name="licensebalance",
            name="images_spent",
            field=models.DecimalField(decimal_places=6, default=Decimal("0.000000"), max_digits=18),
        ),
        migrations.RunSQL(FILL_FROM_ROLLUPS, reverse_sql=migrations.RunSQL.noop),
    ]
