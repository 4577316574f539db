"""The customer API and outgoing webhooks; its webhook consumer of money events registers here."""

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Customer API and webhooks"

    def ready(self) -> None:
        # billing writes money events down in the transaction that posts them; this app
        # reads the announced ones after commit (its own cursor) and records the webhook
        # events they owe. billing never imports this app.
        from api.events import EVENT_TYPES, WEBHOOK_CONSUMER, webhook_event_from_money_event
        from billing.events.consumers import money_event_consumer_register

        money_event_consumer_register(
            name=WEBHOOK_CONSUMER, handle=webhook_event_from_money_event, types=EVENT_TYPES
        )
