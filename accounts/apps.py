from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and licenses"

    def ready(self):
        from django.db.models.signals import post_migrate

        from accounts.roles import roles_sync

        # No sender: post_migrate is sent once per app, and the permissions of apps after
        # `accounts` (billing, usage) only exist once their own signal has been handled.
        post_migrate.connect(roles_sync, dispatch_uid="accounts.roles_sync")
