"""The provider app: what the AI provider's own systems use, never a customer: service
tokens, and the two endpoints they reach (`/ingest/v1/usage`, `/gate/v1/authorize`)."""

from django.apps import AppConfig


class ProviderConfig(AppConfig):
    name = "provider"
    verbose_name = "Provider API (service tokens, push, gate)"
    default_auto_field = "django.db.models.BigAutoField"
