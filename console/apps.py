"""The staff console app, and the admin site it puts in place of Django's."""

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class ConsoleConfig(AppConfig):
    """The staff and billing console: the admin's pages that compose several apps."""

    name = "console"
    default_auto_field = "django.db.models.BigAutoField"


class ConsoleAdminConfig(AdminConfig):
    """django.contrib.admin with the console's site (operations overview as its index,
    the portal's name, a plain 404 for customers) as `admin.site`."""

    default_site = "console.sites.ConsoleAdminSite"
