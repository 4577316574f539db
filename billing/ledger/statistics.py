"""The planner's statistics of the ledger's tables, kept fresh after bulk loads.

The hot reads keep their plans without statistics (portal.plans), but everything
else the planner decides (the statements, reconciliation, the staff lists) is better with
them. Autovacuum analyzes a table once about a tenth of it has changed; where it is off (this
machine) or behind (a backfill of a million records lands in minutes), nothing would.
So whoever loads in bulk calls `ledger_statistics_refresh` afterwards (seed_demo, a sync run
that charged a backfill, generate_usage), and the beat calls it every ten minutes for what
arrives steadily (pushes, the sync). It applies autovacuum's own rule with its defaults:
a table is analyzed once the rows changed since its last ANALYZE exceed 50 + 10 % of its
rows; a table analyzed recently enough costs one catalog read and nothing more.

ANALYZE samples a fixed number of rows (30,000 at the default statistics target) whatever
the table's size, takes no lock that blocks reads or writes, and its results reach the
read replica through the WAL.
"""

import logging

from django.db import connection

logger = logging.getLogger(__name__)

# The tables the customer pages and the gate read by license.
LEDGER_TABLES = (
    "billing_ledgerentry",
    "billing_dailyrollup",
    "billing_endpointdailyrollup",
    "billing_grantdailyrollup",
)
# autovacuum_analyze_threshold and autovacuum_analyze_scale_factor, their defaults.
ANALYZE_THRESHOLD = 50
ANALYZE_SCALE_FACTOR = 0.1
# A sync run that charged at least this many records was a backfill: it refreshes at once.
BACKFILL_RECORDS = 10_000

_BEHIND_SQL = """
SELECT s.relname
FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid
WHERE s.relname = ANY(%s)
  AND s.n_mod_since_analyze > %s + %s * greatest(c.reltuples, 0)
ORDER BY s.relname
"""


def ledger_statistics_refresh() -> list[str]:
    """ANALYZE each of the ledger's tables whose statistics are missing or behind; the
    tables analyzed. Outside any transaction: ANALYZE of a big table takes seconds."""
    with connection.cursor() as cursor:
        # This session's own changes reach pg_stat_user_tables when it next goes idle;
        # a loader asking right after its load must see them.
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(_BEHIND_SQL, [list(LEDGER_TABLES), ANALYZE_THRESHOLD, ANALYZE_SCALE_FACTOR])
        behind = [name for (name,) in cursor.fetchall()]
        for name in behind:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(name)}")
    if behind:
        logger.info("analyzed %s", ", ".join(behind))
    return behind
