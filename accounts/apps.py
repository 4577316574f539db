from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and licenses"

    def ready(self):
        from django.db.models.signals import post_migrate

        from accounts.roles import roles_sync

        # No sender filter: post_migrate is sent once per app, after that app's permissions
        # are created, so the last call sees every app's permissions.
        post_migrate.connect(roles_sync, dispatch_uid="accounts.roles_sync")
