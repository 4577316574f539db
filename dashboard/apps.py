"""The dashboard app: every customer page (docs/architecture.md, "Where a customer page lives")."""

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Customer dashboard"
