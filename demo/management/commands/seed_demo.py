"""`manage.py seed_demo`: the demo licenses, logins and history, idempotent."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.ledger.selectors import balance_get
from billing.ledger.statistics import ledger_statistics_refresh
from billing.money import format_money
from demo.accounts import DEMO_LOGINS, DEMO_PASSWORD, seed_demo_accounts
from demo.money import seed_demo_money, seed_demo_usage
from portal.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Create the demo licenses, logins and history. Safe to run again: adds nothing twice."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-usage",
            action="store_true",
            help="only the licenses and logins (no upstream needed)",
        )

    def handle(self, *args, no_usage, **options):
        licenses = seed_demo_accounts()
        self.stdout.write(f"demo licenses: {', '.join(lic.name for lic in licenses.values())}")
        self.stdout.write(f"demo logins (password {DEMO_PASSWORD}): {', '.join(DEMO_LOGINS)}")
        if no_usage:
            return
        # Usage comes from the upstream (the simulator under `make run`); the purchases
        # and refunds are derived from what it charged.
        try:
            synced = seed_demo_usage(licenses)
        except ApplicationError as exc:
            raise CommandError(
                f"{exc.message} (upstream {settings.UPSTREAM_URL}). Start the simulator with "
                "`manage.py run_upstream_simulator` (make run does), or pass --no-usage."
            ) from exc
        money = seed_demo_money(licenses)
        # The demo's history is a bulk load: the planner's statistics are refreshed now.
        ledger_statistics_refresh()
        for key, license in licenses.items():
            result, paid = synced[key], money[key]
            balance = balance_get(license)
            self.stdout.write(
                f"{license.name}: {result.records_charged} new API calls charged"
                + (
                    f", purchases ({paid.purchases}) and refunds ({paid.refunds}) recorded"
                    if paid.created
                    else ""
                )
                + f"; balance {format_money(balance.balance)}"
            )
