from django.db import migrations

from billing.prices.defaults import seed_default_prices

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION portal_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'Correct a mistake with a new entry.';
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION portal_refuse_change();

CREATE OR REPLACE FUNCTION portal_price_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' OR OLD.effective_from <= now() THEN
        RAISE EXCEPTION 'a price in effect is never edited or deleted: add a new price instead'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER price_append_only
    BEFORE UPDATE OR DELETE ON billing_price
    FOR EACH ROW EXECUTE FUNCTION portal_price_guard();
"""

REVERSE_SQL = """
DROP TRIGGER IF EXISTS ledger_append_only ON billing_ledgerentry;
DROP TRIGGER IF EXISTS price_append_only ON billing_price;
DROP FUNCTION IF EXISTS portal_price_guard();
"""


def seed_prices(apps, schema_editor):
    seed_default_prices(apps.get_model("billing", "Price"))


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        migrations.RunSQL(APPEND_ONLY_SQL, REVERSE_SQL),
        migrations.RunPython(seed_prices, migrations.RunPython.noop),
    ]
