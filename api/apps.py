from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Customer API and webhooks"

    def ready(self) -> None:
        # billing announces money events (billing.signals) inside the transaction that
        # posts them; this app records the webhook events they owe and delivers them after
        # commit. billing never imports this app.
        from api.events import connect_billing_events

        connect_billing_events()
