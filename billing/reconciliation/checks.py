"""The reconciliation's checks, each one statement over a month's ledger: the balance totals,
the daily rollups (by service and by endpoint), the refunds against their charges, and the
credit grants, each compared with what the entries say."""

from dataclasses import dataclass
from decimal import Decimal

from billing.ledger.kinds import (
    CREDIT,
    EXPIRY,
    MOVEMENTS,
    PURCHASE,
    USAGE_REFUND,
)
from billing.ledger.totals import TOTAL_NAMES, sums_select_sql
from billing.models import GRANT_SUMS, ROLLUP_SUMS


@dataclass(frozen=True)
class Difference:
    """A stored figure that is not what the ledger entries sum to."""

    what: str
    stored: Decimal | int | None
    ledger: Decimal | int | None

    def __str__(self) -> str:
        return f"{self.what}: stored {self.stored}, ledger {self.ledger}"


# One row per license: the month's movements (between local midnights of the first of the
# month and of the next, in the license's timezone), and lifetime sums to hold against the
# stored LicenseBalance. One pass over the ledger.
RECONCILE_TOTALS_SQL = (
    """
WITH lic AS (
    SELECT l.id, l.key, l.name, l.timezone,
           (%(start)s::timestamp AT TIME ZONE l.timezone) AS start_at,
           (%(end)s::timestamp AT TIME ZONE l.timezone) AS end_at
    FROM accounts_license AS l
    WHERE %(license_id)s::bigint IS NULL OR l.id = %(license_id)s::bigint
),
sums AS (
    SELECT e.license_id,
        coalesce(sum(e.amount) FILTER (WHERE e.occurred_at < lic.start_at), 0) AS opening,
        """
    + ",\n        ".join(
        f"coalesce({'-' if m.sign < 0 else ''}sum(e.amount) FILTER (WHERE ({m.sql('e')})"
        f" AND e.occurred_at >= lic.start_at AND e.occurred_at < lic.end_at), 0) AS {m.term}"
        for m in MOVEMENTS
    )
    + """,
        coalesce(sum(e.amount) FILTER (WHERE e.occurred_at < lic.end_at), 0) AS closing,
        count(*) FILTER (WHERE e.occurred_at >= lic.start_at AND e.occurred_at < lic.end_at)
            AS month_entries,
        count(*) FILTER (WHERE e.occurred_at < lic.end_at) AS entries_to_month_end,
        count(*) FILTER (WHERE """
    + f"({PURCHASE.sql('e')}) OR ({CREDIT.sql('e')})"
    + """) AS credit_entries,
        count(*) FILTER (WHERE """
    + EXPIRY.sql("e")
    + """) AS expiry_entries,
        """
    + sums_select_sql("e")
    + """
    FROM lic JOIN billing_ledgerentry AS e ON e.license_id = lic.id
    GROUP BY e.license_id
)
SELECT lic.id, lic.key, lic.name, lic.timezone,
       s.opening, """
    + ", ".join(f"s.{m.term}" for m in MOVEMENTS)
    + """, s.closing, s.month_entries,
       s.entries_to_month_end, s.credit_entries, s.expiry_entries,
       """
    + ", ".join(f"s.{name}" for name in TOTAL_NAMES)
    + """,
       b.license_id IS NOT NULL AS has_balance_row,
       """
    + ", ".join(f"b.{name}" for name in TOTAL_NAMES)
    + """,
       coalesce(b.endpoint_rollups_ready, true)
FROM lic
LEFT JOIN sums AS s ON s.license_id = lic.id
LEFT JOIN billing_licensebalance AS b ON b.license_id = lic.id
ORDER BY lic.name, lic.id"""
)


ROLLUP_MEASURES = ROLLUP_SUMS


def _rollup_check_sql(*, table: str, key: str, entries: str = "", licenses: str = "") -> str:
    """A month's rollups of `table` against the entries of the same local days, grouped by
    (day, `key`, service), both ways round: a rollup that is off, a day with entries but
    no rollup, a rollup with no entries. `entries` and `licenses` narrow what is compared."""
    measures = " OR ".join(f"coalesce(rol.{m}, 0) <> coalesce(ent.{m}, 0)" for m in ROLLUP_MEASURES)
    pairs = ", ".join(f"rol.{m}, ent.{m}" for m in ROLLUP_MEASURES)
    return f"""
WITH lic AS (
    SELECT l.id, l.timezone,
           (%(start)s::timestamp AT TIME ZONE l.timezone) AS start_at,
           (%(end)s::timestamp AT TIME ZONE l.timezone) AS end_at
    FROM accounts_license AS l
    LEFT JOIN billing_licensebalance AS b ON b.license_id = l.id
    WHERE (%(license_id)s::bigint IS NULL OR l.id = %(license_id)s::bigint) {licenses}
),
ent AS (
    SELECT e.license_id, (e.occurred_at AT TIME ZONE lic.timezone)::date AS day, e.{key},
           e.service, sum(e.amount) AS amount, sum(e.tokens) AS tokens,
           sum(e.images) AS images, sum(e.api_calls) AS api_calls, count(*) AS entries
    FROM lic JOIN billing_ledgerentry AS e ON e.license_id = lic.id
        AND e.occurred_at >= lic.start_at AND e.occurred_at < lic.end_at {entries}
    GROUP BY 1, 2, 3, 4
),
rol AS (
    SELECT r.license_id, r.day, r.{key}, r.service, r.amount, r.tokens, r.images,
           r.api_calls, r.entries
    FROM lic JOIN {table} AS r ON r.license_id = lic.id
    WHERE r.day >= %(start)s::date AND r.day < %(end)s::date
)
SELECT license_id, day, {key}, service, {pairs}
FROM ent FULL OUTER JOIN rol USING (license_id, day, {key}, service)
WHERE {measures}
ORDER BY license_id, day, {key}, service
"""


# The month's daily rollups (by kind and service), and its usage rollups by endpoint for
# the licenses whose endpoint rollups cover their history (the others get one difference).
RECONCILE_ROLLUPS_SQL = _rollup_check_sql(table="billing_dailyrollup", key="kind")


RECONCILE_ENDPOINT_ROLLUPS_SQL = _rollup_check_sql(
    table="billing_endpointdailyrollup",
    key="endpoint",
    entries="AND e.kind = 'usage'",
    licenses="AND coalesce(b.endpoint_rollups_ready, true)",
)


ENDPOINT_ROLLUPS_NOT_READY = "usage rollups by endpoint not built yet (manage.py rebuild_rollups)"


# Refunds that break invariant 4 (more than the charge or purchase they refund, or of
# something else than a usage charge or a purchase of the same license). The database
# refuses both on insert; the report still looks, whatever the date. A refund of a usage
# charge is +, of a purchase − (money back to the card): the ceiling compares sizes.
RECONCILE_REFUNDS_SQL = """
SELECT r.license_id, r.refund_of_id, c.kind, c.license_id, abs(c.amount), abs(sum(r.amount))
FROM billing_ledgerentry AS r
JOIN billing_ledgerentry AS c ON c.id = r.refund_of_id
WHERE r.refund_of_id IS NOT NULL
  AND (%(license_id)s::bigint IS NULL OR r.license_id = %(license_id)s::bigint)
GROUP BY r.license_id, r.refund_of_id, c.kind, c.license_id, c.amount
HAVING abs(sum(r.amount)) > abs(c.amount) OR c.kind NOT IN ('usage', 'purchase')
    OR c.license_id <> r.license_id
    OR (c.kind = 'usage' AND bool_or(r.amount <= 0))
    OR (c.kind = 'purchase' AND bool_or(r.amount >= 0))
"""


# The credit grants against the ledger and their own rollups, per license (invariant 13):
# what is left of them (to hold against the ledger's balance), how many stand for a
# purchase or credit, how many do not match the entry they stand for, the expiries and
# whether each is its grant's, each kind's sums, and the month's grant rollups.
GRANT_KINDS = ("paid", "promotional")


_GRANT_AMOUNT = {"granted": "amount"}  # a grant's column for each rollup sum


RECONCILE_GRANTS_SQL = (
    """
WITH lic AS (
    SELECT l.id,
           (%(start)s::timestamp AT TIME ZONE l.timezone) AS start_at,
           (%(end)s::timestamp AT TIME ZONE l.timezone) AS end_at
    FROM accounts_license AS l
    WHERE %(license_id)s::bigint IS NULL OR l.id = %(license_id)s::bigint
),
g AS (
    SELECT g.license_id,
        sum(g.remaining) AS remaining,
        count(*) FILTER (WHERE """
    + f"({PURCHASE.sql('e')}) OR ({CREDIT.sql('e')})"
    + """) AS from_credits,
        count(*) FILTER (WHERE e.license_id <> g.license_id OR NOT ("""
    + f"(({PURCHASE.sql('e')}) AND g.kind = 'paid' AND g.amount = e.amount)"
    + f" OR (({CREDIT.sql('e')}) AND g.kind = 'promotional' AND g.amount = e.amount)"
    + f" OR (({USAGE_REFUND.sql('e')}) AND g.kind = 'promotional' AND g.amount <= e.amount)"
    + """)) AS wrong,
        count(g.expiry_entry_id) AS expiries,
        count(*) FILTER (WHERE g.expiry_entry_id IS NOT NULL AND NOT (
            x.license_id = g.license_id AND """
    + EXPIRY.sql("x")
    + """ AND x.amount = -g.expired
            AND x.external_id = 'expiry:' || g.id)) AS wrong_expiries,
        coalesce(sum(g.amount) FILTER (WHERE """
    + USAGE_REFUND.sql("e")
    + """
            AND e.occurred_at >= lic.start_at AND e.occurred_at < lic.end_at), 0)
            AS refund_grants_in_month,
        """
    + ",\n        ".join(
        f"coalesce(sum(g.{_GRANT_AMOUNT.get(name, name)}) FILTER (WHERE g.kind = '{kind}'), 0)"
        f" AS {kind}_{name}"
        for kind in GRANT_KINDS
        for name in GRANT_SUMS
    )
    + """
    FROM lic JOIN billing_creditgrant AS g ON g.license_id = lic.id
    JOIN billing_ledgerentry AS e ON e.id = g.entry_id
    LEFT JOIN billing_ledgerentry AS x ON x.id = g.expiry_entry_id
    GROUP BY g.license_id
),
r AS (
    SELECT r.license_id,
        """
    + ",\n        ".join(
        f"coalesce(sum(r.{name}) FILTER (WHERE r.kind = '{kind}'), 0) AS {kind}_{name}"
        for kind in GRANT_KINDS
        for name in GRANT_SUMS
    )
    + """,
        coalesce(sum(r.granted) FILTER (WHERE r.kind = 'paid'
            AND r.day >= %(start)s::date AND r.day < %(end)s::date), 0) AS month_paid,
        coalesce(sum(r.granted) FILTER (WHERE r.kind = 'promotional'
            AND r.day >= %(start)s::date AND r.day < %(end)s::date), 0) AS month_promotional,
        coalesce(sum(r.expired) FILTER (
            WHERE r.day >= %(start)s::date AND r.day < %(end)s::date), 0) AS month_expired
    FROM lic JOIN billing_grantdailyrollup AS r ON r.license_id = lic.id
    GROUP BY r.license_id
)
SELECT lic.id, coalesce(g.remaining, 0), coalesce(g.from_credits, 0), coalesce(g.wrong, 0),
       coalesce(g.expiries, 0), coalesce(g.wrong_expiries, 0),
       coalesce(g.refund_grants_in_month, 0),
       coalesce(r.month_paid, 0), coalesce(r.month_promotional, 0), coalesce(r.month_expired, 0),
       """
    + ", ".join(
        f"coalesce(g.{kind}_{name}, 0), coalesce(r.{kind}_{name}, 0)"
        for kind in GRANT_KINDS
        for name in GRANT_SUMS
    )
    + """
FROM lic
LEFT JOIN g ON g.license_id = lic.id
LEFT JOIN r ON r.license_id = lic.id
WHERE g.license_id IS NOT NULL OR r.license_id IS NOT NULL
"""
)
