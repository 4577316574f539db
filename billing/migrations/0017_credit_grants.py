"""Credit grants (billing.credits.grants): every purchase a paid grant, every credit a
promotional one, and how much of each usage has consumed; their daily rollups; a credit
approval's expiry.

The backfill gives every license its grants as the posting engine would have kept them:
one per purchase, credit and old goodwill (a refund of nothing), none expiring, a purchase's
refunds to the card taken from its grant, and the usage the balance does not hold consumed
in the consumption order (promotional first, then paid, oldest first) — so the remainders
add up to the balance (invariant 13). The consumption is dated the day of the migration:
months before it show their grants, not what was consumed of them.

At 10 M ledger rows: per license, under its balance row lock as every posting takes it
(no posting interleaves), outside one long transaction (atomic = False). The entries that
brought credit in are found through the license's daily rollups (the days that have a
purchase, credit or refund without a service, each an index range on
ledger_license_recent), never a scan of the ledger. The SQL is this migration's own copy:
the app's (billing/credits/grants.py) may change after it.
"""

from decimal import Decimal

import django.db.models.deletion
import django.db.models.expressions
from django.db import migrations, models, transaction

GRANTS_SQL = """
INSERT INTO billing_creditgrant (
    license_id, kind, entry_id, amount, consumed, refunded, expired, granted_at
)
SELECT e.license_id, CASE WHEN e.kind = 'purchase' THEN 'paid' ELSE 'promotional' END,
       e.id, e.amount, 0,
       CASE WHEN e.kind = 'purchase' THEN least(e.amount, coalesce((
           SELECT -sum(r.amount) FROM billing_ledgerentry AS r
           WHERE r.refund_of_id = e.id AND r.amount < 0), 0)) ELSE 0 END,
       0, e.occurred_at
FROM billing_dailyrollup AS d
JOIN billing_ledgerentry AS e ON e.license_id = d.license_id AND e.kind = d.kind
    AND e.service = ''
    AND e.occurred_at >= (d.day::timestamp AT TIME ZONE %(tz)s)
    AND e.occurred_at < ((d.day + 1)::timestamp AT TIME ZONE %(tz)s)
WHERE d.license_id = %(license_id)s
  AND (d.kind IN ('purchase', 'credit') OR (d.kind = 'refund' AND d.service = ''))
  AND (e.kind IN ('purchase', 'credit') OR (e.kind = 'refund' AND e.amount > 0))
"""

ROLLUPS_SQL = """
INSERT INTO billing_grantdailyrollup (license_id, day, kind, granted, consumed, refunded, expired)
SELECT %(license_id)s, day, kind, sum(granted), 0, sum(refunded), 0 FROM (
    SELECT (g.granted_at AT TIME ZONE %(tz)s)::date AS day, g.kind, g.amount AS granted,
           0 AS refunded
    FROM billing_creditgrant AS g WHERE g.license_id = %(license_id)s
    UNION ALL
    SELECT (r.at AT TIME ZONE %(tz)s)::date, g.kind, 0, g.refunded
    FROM billing_creditgrant AS g
    CROSS JOIN LATERAL (
        SELECT max(occurred_at) AS at FROM billing_ledgerentry WHERE refund_of_id = g.entry_id
    ) AS r
    WHERE g.license_id = %(license_id)s AND g.refunded > 0
) AS parts
GROUP BY day, kind
"""

CONSUME_SQL = """
WITH open AS (
    SELECT id, kind, remaining,
           sum(remaining) OVER (ORDER BY (kind = 'paid'), expires_at NULLS LAST, granted_at, id)
               AS upto
    FROM billing_creditgrant
    WHERE license_id = %(license_id)s AND remaining > 0
),
need AS (
    SELECT coalesce(max(upto), 0) - greatest((
        SELECT balance FROM billing_licensebalance WHERE license_id = %(license_id)s
    ), 0) AS excess FROM open
),
take AS (
    SELECT o.id, o.kind, least(o.remaining, need.excess - (o.upto - o.remaining)) AS amount
    FROM open AS o, need
    WHERE need.excess > 0 AND o.upto - o.remaining < need.excess
),
consumed AS (
    UPDATE billing_creditgrant AS g SET consumed = g.consumed + t.amount
    FROM take AS t WHERE g.id = t.id
    RETURNING t.kind, t.amount
),
rolled AS (
    INSERT INTO billing_grantdailyrollup (license_id, day, kind, granted, consumed, refunded, expired)
    SELECT %(license_id)s, (now() AT TIME ZONE %(tz)s)::date, kind, 0, sum(amount), 0, 0
    FROM consumed GROUP BY kind
    ON CONFLICT (license_id, day, kind) DO UPDATE SET
        consumed = billing_grantdailyrollup.consumed + EXCLUDED.consumed
)
SELECT excess FROM need
"""


def backfill(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT b.license_id, l.key, l.timezone FROM billing_licensebalance AS b "
            "JOIN accounts_license AS l ON l.id = b.license_id ORDER BY b.license_id"
        )
        licenses = cursor.fetchall()
    for license_id, key, tz in licenses:
        params = {"license_id": license_id, "tz": tz}
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM billing_licensebalance WHERE license_id = %s FOR UPDATE",
                [license_id],
            )
            cursor.execute(GRANTS_SQL, params)
            cursor.execute(ROLLUPS_SQL, params)
            cursor.execute(CONSUME_SQL, params)
            excess = cursor.fetchone()[0]
            if excess < 0:
                # The entries hold more than their grants: refunds of usage beyond the
                # usage, which the refund ceiling (invariant 4) forbids.
                raise RuntimeError(
                    f"license {key}: its balance is {-excess} more than the credit it was "
                    "ever given; reconcile_ledger will say why"
                )


def unfill(apps, schema_editor):
    schema_editor.execute("DELETE FROM billing_grantdailyrollup")
    schema_editor.execute("DELETE FROM billing_creditgrant")


MONEY = {"decimal_places": 6, "max_digits": 18}
KINDS = [("paid", "Paid credit"), ("promotional", "Promotional credit")]
REMAINING = django.db.models.expressions.CombinedExpression(
    django.db.models.expressions.CombinedExpression(
        django.db.models.expressions.CombinedExpression(
            models.F("amount"), "-", models.F("consumed")
        ),
        "-",
        models.F("refunded"),
    ),
    "-",
    models.F("expired"),
)
SPENT = django.db.models.expressions.CombinedExpression(
    django.db.models.expressions.CombinedExpression(
        models.F("consumed"), "+", models.F("refunded")
    ),
    "+",
    models.F("expired"),
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0005_session_with_its_login"),
        ("billing", "0016_ledger_movements"),
    ]

    operations = [
        migrations.CreateModel(
            name="CreditGrant",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("kind", models.CharField(choices=KINDS, max_length=16)),
                ("amount", models.DecimalField(**MONEY)),
                ("consumed", models.DecimalField(default=Decimal("0.000000"), **MONEY)),
                ("refunded", models.DecimalField(default=Decimal("0.000000"), **MONEY)),
                ("expired", models.DecimalField(default=Decimal("0.000000"), **MONEY)),
                (
                    "remaining",
                    models.GeneratedField(
                        db_persist=True,
                        expression=REMAINING,
                        output_field=models.DecimalField(**MONEY),
                    ),
                ),
                ("granted_at", models.DateTimeField()),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                ("expired_at", models.DateTimeField(blank=True, null=True)),
                (
                    "entry",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="grant",
                        to="billing.ledgerentry",
                    ),
                ),
                (
                    "expiry_entry",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="billing.ledgerentry",
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
                "indexes": [
                    models.Index(
                        condition=models.Q(("remaining__gt", 0)),
                        fields=["license"],
                        name="credit_grant_open",
                    ),
                    models.Index(
                        condition=models.Q(
                            ("expired_at__isnull", True), ("expires_at__isnull", False)
                        ),
                        fields=["expires_at"],
                        name="credit_grant_due",
                    ),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("kind__in", ["paid", "promotional"])),
                        name="credit_grant_kind",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("amount__gt", 0),
                            ("amount__gte", SPENT),
                            ("consumed__gte", 0),
                            ("expired__gte", 0),
                            ("refunded__gte", 0),
                        ),
                        name="credit_grant_amounts",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(
                                ("expired", 0),
                                ("expired_at__isnull", True),
                                ("expiry_entry__isnull", True),
                            ),
                            models.Q(
                                ("amount", SPENT),
                                ("expired", 0),
                                ("expired_at__isnull", False),
                                ("expires_at__isnull", False),
                                ("expiry_entry__isnull", True),
                            ),
                            models.Q(
                                ("amount", SPENT),
                                ("expired__gt", 0),
                                ("expired_at__isnull", False),
                                ("expires_at__isnull", False),
                                ("expiry_entry__isnull", False),
                            ),
                            _connector="OR",
                        ),
                        name="credit_grant_expiry",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="GrantDailyRollup",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("day", models.DateField()),
                ("kind", models.CharField(choices=KINDS, max_length=16)),
                ("granted", models.DecimalField(default=Decimal("0.000000"), **MONEY)),
                ("consumed", models.DecimalField(default=Decimal("0.000000"), **MONEY)),
                ("refunded", models.DecimalField(default=Decimal("0.000000"), **MONEY)),
                ("expired", models.DecimalField(default=Decimal("0.000000"), **MONEY)),
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
                        fields=("license", "day", "kind"), name="grant_rollup_unique_key"
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="creditapproval",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(backfill, unfill),
    ]
