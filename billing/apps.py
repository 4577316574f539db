"""The billing app: the ledger and everything told about money; its hooks on accounts' signals and the default prices after a flush."""

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing and ledger"

    def ready(self):
        from django.db.models.signals import post_migrate

        from accounts.signals import license_summaries_register, license_timezone_changed

        # The owners' email when the gate starts refusing for a limit: read from the
        # limit.reached money events after the gate's transaction commits.
        from billing.events.consumers import money_event_consumer_register
        from billing.events.types import LIMIT_REACHED
        from billing.ledger.selectors import license_summaries
        from billing.limits.notices import LIMIT_EMAIL_CONSUMER, limit_email_on_money_event

        money_event_consumer_register(
            name=LIMIT_EMAIL_CONSUMER, handle=limit_email_on_money_event, types=[LIMIT_REACHED]
        )
        post_migrate.connect(_restore_default_prices, sender=self, dispatch_uid="billing.prices")
        license_timezone_changed.connect(_rebuild_rollups, dispatch_uid="billing.rollups")
        license_summaries_register(license_summaries)


def _rebuild_rollups(*, license, **kwargs):
    """Rollups are kept by the license's local day: a new timezone means new days."""
    from billing.ledger.rebuild import rollups_rebuild

    rollups_rebuild(license=license)


def _restore_default_prices(**kwargs):
    """Migration 0002 seeds the default prices (docs/product.md); a flush (tests) empties the table, and
    Django re-emits post_migrate after it, so the defaults come back. Idempotent."""
    from billing.models import Price
    from billing.prices.defaults import seed_default_prices

    seed_default_prices(Price)
