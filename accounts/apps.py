from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and licenses"

    def ready(self):
        from django.db.models.signals import post_migrate

        from accounts.roles import roles_sync

        post_migrate.connect(roles_sync, sender=self, dispatch_uid="accounts.roles_sync")
