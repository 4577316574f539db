"""The portal app: shared plumbing, and the collectors it registers for /metrics."""

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        from portal.metrics import collector_register
        from portal.replica import ReplicaCollector

        collector_register(ReplicaCollector())
