from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

# The statement's index (billing.month_figures): a month's refunds without a service. At
# 10 M ledger rows: built CONCURRENTLY (atomic = False), so postings go on while PostgreSQL
# reads the table once; the index holds only the few rows it covers, so inserts of usage
# entries (the hot path) never touch it.


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("billing", "0010_licensebalance_money_entries")]

    operations = [
        AddIndexConcurrently(
            model_name="ledgerentry",
            index=models.Index(
                condition=models.Q(("kind", "refund"), ("service", "")),
                fields=["license", "occurred_at"],
                name="ledger_bare_refunds",
            ),
        ),
    ]
