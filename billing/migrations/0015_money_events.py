"""Money events (billing/events): the outbox billing and payments write in the transactions
that move money, and one cursor per consumer. Two new, empty tables: instant. `xact_id`
takes the writing transaction's id from the database (DEFAULT pg_current_xact_id())."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import billing.events.models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_session_with_its_login"),
        ("billing", "0014_rollup_endpoint"),
    ]

    operations = [
        migrations.CreateModel(
            name="MoneyEventCursor",
            fields=[
                ("name", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("xact_id", models.BigIntegerField(default=0)),
                ("event_id", models.BigIntegerField(default=0)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.CreateModel(
            name="MoneyEvent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("type", models.CharField(max_length=40)),
                ("data", models.JSONField(default=dict)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "xact_id",
                    models.BigIntegerField(
                        db_default=billing.events.models.CurrentTransactionId(), editable=False
                    ),
                ),
                (
                    "license",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.license",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["xact_id", "id"], name="money_event_order")],
            },
        ),
    ]
