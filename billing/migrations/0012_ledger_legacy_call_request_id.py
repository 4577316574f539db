from django.db import migrations

# Search by request id for usage recorded before the call columns (billing.0007): those
# entries keep their request id only in the description ("endpoint (request id) [status]"),
# and the ledger is append-only, so they cannot be filled in. This expression index reads it
# out of the description for exactly those rows (the first entry of a call with an empty
# request_id column); billing.transactions.LEGACY_REQUEST_ID_SQL is the same expression,
# written in the query as a constant so the planner matches it. At 10 M ledger rows: built
# CONCURRENTLY (atomic = False), one read of the table while postings go on.
PATTERN = r" \(([^()]*)\)(?: \[[^\[\]]*\])?$"

CREATE = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ledger_legacy_call_request_id "
    "ON billing_ledgerentry (license_id, substring(description FROM '" + PATTERN + "')) "
    "WHERE kind = 'usage' AND api_calls = 1 AND request_id = ''"
)
DROP = "DROP INDEX CONCURRENTLY IF EXISTS ledger_legacy_call_request_id"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("billing", "0011_ledger_bare_refunds")]

    operations = [migrations.RunSQL(CREATE, DROP)]
