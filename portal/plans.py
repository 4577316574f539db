"""Reads of a license's newest entries, planned the same with or without statistics.

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
judged that index cheaper. So these reads are planned with neither bitmaps nor sorts they
can do without: the ordered range of the index is then the only plan left without a sort,
and a sort the read cannot avoid (a window over a page already read) is still made. They are
sent as `SET LOCAL …; <the read>; RESET …`, one message: without a transaction of the
caller's, PostgreSQL runs them in one implicit transaction and the settings end with it;
inside one, RESET puts them back. It costs no extra round trip; it needs Django's default
client-side parameter binding (with server-side binding PostgreSQL refuses several
statements in one message, loudly).
"""

from typing import Any

from django.db import connections
from django.db.models import QuerySet

# The plans these reads must not use: the planner adds a prohibitive cost to each.
_AVOIDED = ("enable_bitmapscan", "enable_sort")
_BEFORE = "".join(f"SET LOCAL {name} = off; " for name in _AVOIDED)
_AFTER = "".join(f"; RESET {name}" for name in _AVOIDED)


def sql_rows_in_index_order(alias: str, sql: str, params: Any) -> list[tuple[Any, ...]]:
    """The rows of `sql` (one SELECT), run on `alias` planned with neither bitmap scans
    nor avoidable sorts."""
    with connections[alias].cursor() as cursor:
        cursor.execute(_BEFORE + sql + _AFTER, params)
        for _ in _AVOIDED:
            cursor.nextset()  # past each SET's result, to the read's
        return cursor.fetchall()


def rows_in_index_order(queryset: QuerySet[Any, Any]) -> list[tuple[Any, ...]]:
    """The rows of an ordered, limited `values_list` read of one license's entries, on the
    database the queryset reads from (the replica's when the view reads from it)."""
    alias = queryset.db
    sql, params = queryset.query.get_compiler(using=alias).as_sql()
    return sql_rows_in_index_order(alias, sql, params)
