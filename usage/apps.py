"""The usage app: the upstream client, the sync and its state, the simulator."""

from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage and sync"

    def ready(self):
        from portal.metrics import collector_register
        from usage.metrics import SyncCollector

        collector_register(SyncCollector())
