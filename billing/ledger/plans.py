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

So these reads are sent as `SET LOCAL enable_bitmapscan = off; <the read>; RESET
enable_bitmapscan`, one message: without a transaction of the caller's, PostgreSQL runs the
three in one implicit transaction and the setting ends with it; inside one, RESET puts it
back. The planner still chooses among the other plans (the ordered index scan, a partial
index that matches a filter). It costs no extra round trip; it needs Django's default
client-side parameter binding (with server-side binding PostgreSQL refuses several
statements in one message, loudly).
"""

from typing import Any

from django.db import connections
from django.db.models import QuerySet

_WITHOUT_BITMAPS = "SET LOCAL enable_bitmapscan = off; {read}; RESET enable_bitmapscan"


def rows_without_bitmaps(alias: str, sql: str, params: Any) -> list[tuple[Any, ...]]:
    """The rows of `sql` (one SELECT), run on `alias` with no bitmap scan considered."""
    with connections[alias].cursor() as cursor:
        cursor.execute(_WITHOUT_BITMAPS.format(read=sql), params)
        cursor.nextset()  # past the SET's result, to the read's
        return cursor.fetchall()


def rows_in_index_order(queryset: QuerySet[Any, Any]) -> list[tuple[Any, ...]]:
    """The rows of an ordered, limited `values_list` read of one license's entries, on the
    database the queryset reads from (the replica's when the view reads from it)."""
    alias = queryset.db
    sql, params = queryset.query.get_compiler(using=alias).as_sql()
    return rows_without_bitmaps(alias, sql, params)
