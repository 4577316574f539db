from django.core.management.base import BaseCommand

from accounts.demo import DEMO_LOGINS, DEMO_PASSWORD, seed_demo_accounts


class Command(BaseCommand):
    help = "Create the demo licenses, logins and history. Safe to run again: adds nothing twice."

    def handle(self, *args, **options):
        licenses = seed_demo_accounts()
        self.stdout.write(f"demo licenses: {', '.join(lic.name for lic in licenses.values())}")
        self.stdout.write(f"demo logins (password {DEMO_PASSWORD}): {', '.join(DEMO_LOGINS)}")
