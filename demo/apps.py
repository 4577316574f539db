"""The demo app: demo data, `seed_demo` and `make run`."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Demo data and `make run`"
