"""Reads of a license's history, planned the same with or without statistics, fresh or not.

A page of a license's history (the dashboard's last hundred, All transactions, the staff
ledger) is one range of the index ledger_license_recent (license, -occurred_at, -id), read
in its order until the page is full: its cost depends on the page, not on the history
(invariant 9). PostgreSQL picks that plan only when it believes the license has more entries
than the page shows. With no statistics (a table never analyzed: autovacuum off, or a bulk
load it has not reached yet) it guesses 0.5 % of the table for `license_id = X`; on a table
of up to a few hundred thousand rows that is fewer than a page, so it read every entry of a
large license through a bitmap and sorted them to keep the page (65 ms instead of 0.3 ms for
115 K entries on the demo data; tests/portal/test_plans_without_statistics.py).

Taking the bitmap away is not enough: the planner then read all of them through another
index that starts with the license (ledger_external_id_unique) and sorted them, whenever it
judged that index cheaper; and with `license_id = X` the global index ledger_recent
(-occurred_at, -id) gives the same order, filtered by license, past every newer entry of
every other license. So these reads name the license as a range of one and order by it
(billing.ledger.models.LedgerQuerySet.history_of, NEWEST_FIRST), and are planned with
neither bitmaps nor sorts they can do without: the ordered range of ledger_license_recent is
then the only plan left without a sort, and a sort the read cannot avoid (a window over a
page already read) is still made. They are sent as `SET LOCAL …; <the read>; RESET …`, one
message: without a transaction of the caller's, PostgreSQL runs them in one implicit
transaction and the settings end with it; inside one, RESET puts them back. It costs no
extra round trip; it needs Django's default client-side parameter binding (with server-side
binding PostgreSQL refuses several statements in one message, loudly).
"""

from typing import Any

from django.db import connections
from django.db.models import QuerySet

# The plans these reads must not use (the planner adds a prohibitive cost to each), and no
# JIT: that cost, added to a sort the read cannot avoid, put the plan's total past
# jit_above_cost, and compiling it took 0.7 s for a page that runs in 2 ms.
_SETTINGS = (
    ("enable_bitmapscan", "off"),
    ("enable_sort", "off"),
    ("enable_incremental_sort", "off"),
    ("jit", "off"),
)
_BEFORE = "".join(f"SET LOCAL {name} = {value}; " for name, value in _SETTINGS)
_AFTER = "".join(f"; RESET {name}" for name, _ in _SETTINGS)


def sql_rows_in_index_order(alias: str, sql: str, params: Any) -> list[tuple[Any, ...]]:
    """The rows of `sql` (one SELECT), run on `alias` planned with neither bitmap scans
    nor avoidable sorts."""
    with connections[alias].cursor() as cursor:
        cursor.execute(_BEFORE + sql + _AFTER, params)
        for _ in _SETTINGS:
            cursor.nextset()  # past each SET's result, to the read's
        return cursor.fetchall()


def rows_in_index_order(queryset: QuerySet[Any, Any]) -> list[tuple[Any, ...]]:
    """The rows of an ordered, limited `values_list` read of one license's entries, on the
    database the queryset reads from (the replica's when the view reads from it)."""
    alias = queryset.db
    sql, params = queryset.query.get_compiler(using=alias).as_sql()
    return sql_rows_in_index_order(alias, sql, params)
