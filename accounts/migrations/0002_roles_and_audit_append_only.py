from django.db import migrations

from accounts.roles import BILLING, SUPPORT

AUDIT_APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION portal_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'Correct a mistake with a new entry.';
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_append_only
    BEFORE UPDATE OR DELETE ON accounts_auditevent
    FOR EACH ROW EXECUTE FUNCTION portal_refuse_change();
"""


def create_groups(apps, schema_editor):
    # Permissions are attached by accounts.roles.roles_sync after every migrate.
    group = apps.get_model("auth", "Group")
    for name in (SUPPORT, BILLING):
        group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunSQL(
            AUDIT_APPEND_ONLY_SQL,
            "DROP TRIGGER IF EXISTS audit_append_only ON accounts_auditevent;",
        ),
        migrations.RunPython(create_groups, migrations.RunPython.noop),
    ]
