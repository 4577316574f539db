from django.db import migrations, models

# Refunds of a card purchase: a negative refund whose refund_of is the purchase. The guard
# (migration 0003) now accepts two kinds of refunded entry, each with its own sign and
# ceiling: a usage charge of the same license and service (refund > 0, refunds together at
# most the charge) and a purchase of the same license (refund < 0, service "", refunds
# together at most the purchase). Anything else is still refused.
REFUND_GUARD_SQL = """
CREATE OR REPLACE FUNCTION billing_refund_guard() RETURNS trigger AS $$
DECLARE
    charge billing_ledgerentry%ROWTYPE;
    already numeric;
BEGIN
    SELECT * INTO charge FROM billing_ledgerentry WHERE id = NEW.refund_of_id
        FOR NO KEY UPDATE;
    IF NOT FOUND OR charge.license_id <> NEW.license_id
            OR charge.kind NOT IN ('usage', 'purchase')
            OR (charge.kind = 'usage' AND (charge.service <> NEW.service OR NEW.amount <= 0))
            OR (charge.kind = 'purchase' AND (NEW.service <> '' OR NEW.amount >= 0)) THEN
        RAISE EXCEPTION 'entry % is not a usage charge of this license and service, nor a purchase of it',
            NEW.refund_of_id USING ERRCODE = 'check_violation';
    END IF;
    SELECT coalesce(sum(amount), 0) INTO already
        FROM billing_ledgerentry WHERE refund_of_id = NEW.refund_of_id;
    IF abs(already + NEW.amount) > abs(charge.amount) THEN
        RAISE EXCEPTION 'refunds of entry % would exceed the charge: % + % > %',
            NEW.refund_of_id, abs(already), abs(NEW.amount), abs(charge.amount)
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"""

PREVIOUS_GUARD_SQL = """
CREATE OR REPLACE FUNCTION billing_refund_guard() RETURNS trigger AS $$
DECLARE
    charge billing_ledgerentry%ROWTYPE;
    already numeric;
BEGIN
    SELECT * INTO charge FROM billing_ledgerentry WHERE id = NEW.refund_of_id
        FOR NO KEY UPDATE;
    IF NOT FOUND OR charge.kind <> 'usage' OR charge.license_id <> NEW.license_id
            OR charge.service <> NEW.service THEN
        RAISE EXCEPTION 'entry % is not a usage charge of this license and service',
            NEW.refund_of_id USING ERRCODE = 'check_violation';
    END IF;
    SELECT coalesce(sum(amount), 0) INTO already
        FROM billing_ledgerentry WHERE refund_of_id = NEW.refund_of_id;
    IF already + NEW.amount > -charge.amount THEN
        RAISE EXCEPTION 'refunds of entry % would exceed the charge: % + % > %',
            NEW.refund_of_id, already, NEW.amount, -charge.amount
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0008_chargeflag")]

    operations = [
        migrations.RemoveConstraint(model_name="ledgerentry", name="ledger_sign_per_kind"),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.CheckConstraint(
                condition=(
                    models.Q(kind="purchase", amount__gt=0)
                    | models.Q(kind="refund", amount__gt=0)
                    | models.Q(kind="credit", amount__gt=0)
                    | models.Q(kind="refund", amount__lt=0, refund_of__isnull=False, service="")
                    | models.Q(kind="usage", amount__lte=0)
                ),
                name="ledger_sign_per_kind",
            ),
        ),
        migrations.RunSQL(REFUND_GUARD_SQL, PREVIOUS_GUARD_SQL),
    ]
