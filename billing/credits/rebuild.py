"""Credit grants rebuilt from the ledger: after a timezone change their entry-dated rollups
move to the new local days (`grant_rollups_redate`), and after a bulk load that bypasses
the posting engine every grant is made again from the entries (`grants_rebuild`)."""

from datetime import datetime
from decimal import Decimal

from django.db import connection

from accounts.models import License
from billing.credits.grants import grants_settle
from billing.ledger.kinds import (
    CREDIT,
    PURCHASE,
)
from billing.models import GRANT_SUMS

# Entry-dated sums of the grant rollups (granted by its entry's day, expired by its expiry
# entry's day), from the grants themselves, in the license's timezone now.
_ENTRY_DATED_SQL = """
SELECT day, kind, sum(granted) AS granted, sum(expired) AS expired FROM (
    SELECT (g.granted_at AT TIME ZONE %(tz)s)::date AS day, g.kind, g.amount AS granted,
           0 AS expired
    FROM billing_creditgrant AS g WHERE g.license_id = %(license_id)s
    UNION ALL
    SELECT (e.occurred_at AT TIME ZONE %(tz)s)::date, g.kind, 0, g.expired
    FROM billing_creditgrant AS g JOIN billing_ledgerentry AS e ON e.id = g.expiry_entry_id
    WHERE g.license_id = %(license_id)s
) AS dated
GROUP BY day, kind
"""


_CLEAR_ENTRY_DATED_SQL = """
UPDATE billing_grantdailyrollup SET granted = 0, expired = 0 WHERE license_id = %(license_id)s
"""


_REDATE_SQL = f"""
INSERT INTO billing_grantdailyrollup (license_id, day, kind, {", ".join(GRANT_SUMS)})
SELECT %(license_id)s, day, kind, granted, 0, 0, expired
FROM ({_ENTRY_DATED_SQL}) AS d
ON CONFLICT (license_id, day, kind) DO UPDATE SET
    granted = EXCLUDED.granted, expired = EXCLUDED.expired
"""  # noqa: S608


_DROP_EMPTY_ROLLUPS_SQL = f"""
DELETE FROM billing_grantdailyrollup WHERE license_id = %(license_id)s
    AND {" AND ".join(f"{name} = 0" for name in GRANT_SUMS)}
"""  # noqa: S608


def grant_rollups_redate(*, license: License) -> None:
    """After a timezone change: the grant rollups' entry-dated sums (granted, expired) moved
    to the new timezone's days. Consumption and refunds stay on the days they were
    recorded (a posting's moment is not kept: at most a day apart at a month's edge).
    Inside the transaction holding the license's balance lock (billing.ledger.rebuild)."""
    params: dict[str, int | str] = {"license_id": license.pk, "tz": license.timezone}
    with connection.cursor() as cursor:
        cursor.execute(_CLEAR_ENTRY_DATED_SQL, params)
        cursor.execute(_REDATE_SQL, params)
        cursor.execute(_DROP_EMPTY_ROLLUPS_SQL, params)


# Grants for the entries that bring credit in and have none (a bulk load bypassed the
# posting engine), never expiring.
_MISSING_GRANTS_SQL = f"""
INSERT INTO billing_creditgrant (
    license_id, kind, entry_id, amount, consumed, refunded, expired, granted_at
)
SELECT e.license_id, CASE WHEN {PURCHASE.sql("e")} THEN 'paid' ELSE 'promotional' END,
       e.id, e.amount, 0, 0, 0, e.occurred_at
FROM billing_ledgerentry AS e
WHERE e.license_id = %(license_id)s AND ({PURCHASE.sql("e")} OR {CREDIT.sql("e")})
  AND NOT EXISTS (SELECT 1 FROM billing_creditgrant AS g WHERE g.entry_id = e.id)
"""  # noqa: S608


# Grants not expired start again from nothing consumed, less their purchase's refunds to
# the card (as far as the grant holds them).
_RESET_SQL = """
UPDATE billing_creditgrant AS g SET consumed = 0, refunded = least(g.amount, coalesce((
    SELECT -sum(r.amount) FROM billing_ledgerentry AS r
    WHERE r.refund_of_id = g.entry_id AND r.amount < 0
), 0))
WHERE g.license_id = %(license_id)s AND g.expired_at IS NULL
"""


_REBUILD_ROLLUPS_SQL = f"""
INSERT INTO billing_grantdailyrollup (license_id, day, kind, {", ".join(GRANT_SUMS)})
SELECT %(license_id)s, day, kind, sum(granted), sum(consumed), sum(refunded), sum(expired)
FROM (
    SELECT day, kind, granted, 0 AS consumed, 0 AS refunded, expired
    FROM ({_ENTRY_DATED_SQL}) AS d
    UNION ALL
    -- Refunds to the card, on the day of the purchase's latest refund.
    SELECT (r.at AT TIME ZONE %(tz)s)::date, g.kind, 0, 0, g.refunded, 0
    FROM billing_creditgrant AS g
    CROSS JOIN LATERAL (
        SELECT max(occurred_at) AS at FROM billing_ledgerentry WHERE refund_of_id = g.entry_id
    ) AS r
    WHERE g.license_id = %(license_id)s AND g.refunded > 0
    UNION ALL
    -- What expired grants had consumed, today (what is not expired is settled afresh).
    SELECT (%(now)s::timestamptz AT TIME ZONE %(tz)s)::date, g.kind, 0, g.consumed, 0, 0
    FROM billing_creditgrant AS g
    WHERE g.license_id = %(license_id)s AND g.expired_at IS NOT NULL AND g.consumed > 0
) AS parts
GROUP BY day, kind
"""  # noqa: S608


def grants_rebuild(*, license: License, balance: Decimal, now: datetime) -> None:
    """The license's grants made again from its entries after a bulk load that bypassed
    the posting engine (billing.ledger.rebuild.license_totals_rebuild): a grant for each
    purchase and credit that has none, and every grant not expired consumed afresh, in
    CONSUMPTION_ORDER, up to the balance (`balance`); the grant rollups with them
    (consumption dated `now`). Inside the transaction holding the balance lock."""
    params: dict[str, int | str | datetime] = {
        "license_id": license.pk,
        "tz": license.timezone,
        "now": now,
    }
    with connection.cursor() as cursor:
        cursor.execute(_MISSING_GRANTS_SQL, params)
        cursor.execute(_RESET_SQL, params)
        cursor.execute("DELETE FROM billing_grantdailyrollup WHERE license_id = %s", [license.pk])
        cursor.execute(_REBUILD_ROLLUPS_SQL, params)
        grants_settle(cursor, license=license, balance=balance, now=now)
