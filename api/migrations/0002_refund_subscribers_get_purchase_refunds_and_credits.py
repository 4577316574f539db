"""Card refunds and goodwill credits were announced as refund.issued; they have their own
types now (purchase.refunded, credit.granted), and refund.issued is a usage refund's. An
endpoint subscribed to refund.issued is subscribed to both new types too, so it keeps
receiving every movement it received before, under its own name (docs/architecture.md,
"Webhooks"). credit.expired is new: nobody received it before, so nobody is subscribed."""

from django.db import migrations

OLD = "refund.issued"
NEW = ("purchase.refunded", "credit.granted")


def subscribe(apps, schema_editor):
    WebhookEndpoint = apps.get_model("api", "WebhookEndpoint")
    for endpoint in WebhookEndpoint.objects.filter(events__contains=[OLD]).iterator():
        missing = [e for e in NEW if e not in endpoint.events]
        if missing:
            endpoint.events = [*endpoint.events, *missing]
            endpoint.save(update_fields=["events"])


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]

    operations = [migrations.RunPython(subscribe, migrations.RunPython.noop)]
