"""The accounts app: logins, licenses (the tenant), domains, memberships, roles, audit trail."""

from django.apps import AppConfig, apps


class AccountsConfig(AppConfig):
    default = True
    name = "accounts"
    verbose_name = "Accounts and licenses"

    def ready(self):
        from django.db.models.signals import post_migrate

        from accounts.roles import roles_sync

        # post_migrate is sent once per app with models (after every migrate, and after every
        # flush), each time after that app's permissions are created: only the last app's
        # signal sees them all, so roles_sync listens to that one and runs once per migrate.
        last = [config for config in apps.get_app_configs() if config.models_module][-1]
        post_migrate.connect(roles_sync, sender=last, dispatch_uid="accounts.roles_sync")
