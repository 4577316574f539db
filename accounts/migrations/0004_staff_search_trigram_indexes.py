"""Trigram indexes for the staff search (accounts.selectors.license_search): license key,
name and contact email, domain hostname and login email, each on UPPER(col) because
Django's `icontains` on PostgreSQL is `UPPER(col::text) LIKE UPPER(%s)`.

Raw SQL: Django 5.2 wraps an OpClass over an expression in parentheses that PostgreSQL
refuses (`((UPPER(col) gin_trgm_ops))`).
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = (
    ("license_key_trgm", "accounts_license", "key"),
    ("license_name_trgm", "accounts_license", "name"),
    ("license_contact_trgm", "accounts_license", "contact_email"),
    ("domain_hostname_trgm", "accounts_domain", "hostname"),
    ("user_email_trgm", "accounts_user", "email"),
)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_membership_receives_alerts_alertrecipient"),
    ]

    operations = [
        TrigramExtension(),
        *(
            migrations.RunSQL(
                f'CREATE INDEX "{name}" ON "{table}" USING gin ((upper("{column}")) gin_trgm_ops)',
                f'DROP INDEX "{name}"',
            )
            for name, table, column in INDEXES
        ),
    ]
