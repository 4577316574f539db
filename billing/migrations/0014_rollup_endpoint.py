"""Usage rollups by endpoint (the usage explorer's "by endpoint"), safe at 10 M entries.

Nothing here reads or rewrites the ledger, and no big table is locked for long:
- billing_endpointdailyrollup is a new, empty table (instant).
- LicenseBalance.endpoint_rollups_ready is added with a constant database default, which
  PostgreSQL keeps in the catalog instead of rewriting the table (one row per license
  anyway): False for the rows that exist (those licenses have history the new table does
  not cover yet) except rows with no entries; then the default becomes True, since a new
  license's rows cover it from its first posting on. A database default, so the code still
  running during the deploy can go on creating balance rows.
- The history is filled once the new code is live, license by license, by `manage.py
  rebuild_rollups --all` (billing.ledger.rollups_rebuild: one pass over a license's
  entries with its balance row locked, about 6 s per 10 M entries; postings of that
  license wait for it instead of slipping between the fill and the flag). Filling it here
  would race the old code still posting while the migration runs. Until then the explorer
  and the API say that usage by endpoint is not ready for such a license, and the
  reconciliation reports it."""

from decimal import Decimal

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_staff_search_trigram_indexes"),
        ("billing", "0013_credit_approval"),
    ]

    operations = [
        migrations.AddField(
            model_name="licensebalance",
            name="endpoint_rollups_ready",
            field=models.BooleanField(db_default=False),
        ),
        migrations.RunSQL(
            "UPDATE billing_licensebalance SET endpoint_rollups_ready = true WHERE entries = 0",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="licensebalance",
            name="endpoint_rollups_ready",
            field=models.BooleanField(default=True, db_default=True),
        ),
        migrations.CreateModel(
            name="EndpointDailyRollup",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("day", models.DateField()),
                ("endpoint", models.CharField(blank=True, default="", max_length=200)),
                ("service", models.CharField(max_length=32)),
                (
                    "amount",
                    models.DecimalField(
                        decimal_places=6, default=Decimal("0.000000"), max_digits=18
                    ),
                ),
                ("tokens", models.BigIntegerField(default=0)),
                ("images", models.BigIntegerField(default=0)),
                ("api_calls", models.BigIntegerField(default=0)),
                ("entries", models.BigIntegerField(default=0)),
                (
                    "license",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.license",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("license", "day", "endpoint", "service"),
                        name="endpoint_rollup_unique_key",
                    )
                ],
            },
        ),
    ]
