"""`manage.py rebuild_rollups --license KEY` (or `--all`, or `--not-ready`)

Recomputes a license's daily rollups (by service, and usage by endpoint) from its ledger
entries, in its current timezone: what the admin does when a license's timezone is edited
(accounts.services.license_save), for when rollups must be rebuilt by hand — a timezone
changed outside the admin, a difference reconcile_ledger reported, or once after migration
billing.0014 to fill the usage rollups by endpoint of the licenses that had history. Each license in its own transaction, with its
balance row locked, so syncs and refunds wait for it and nothing is lost. `--not-ready`
rebuilds only the licenses whose endpoint rollups do not cover their history yet: `make
migrate` runs it, so a database from before billing.0014 is filled once and then costs one
query."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import License
from billing.ledger.rebuild import rollups_rebuild
from billing.models import LicenseBalance


class Command(BaseCommand):
    help = "Rebuild the daily rollups of a license (or every license) from its ledger entries."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--license", dest="license_key", help="the license key")
        which.add_argument("--all", action="store_true", help="every license, one at a time")
        which.add_argument(
            "--not-ready",
            action="store_true",
            help="only licenses whose usage rollups by endpoint are not filled yet",
        )

    def handle(self, *args, license_key=None, all=False, not_ready=False, **options):
        if all:
            licenses = list(License.objects.order_by("pk"))
        elif not_ready:
            waiting = LicenseBalance.objects.filter(endpoint_rollups_ready=False)
            licenses = list(
                License.objects.filter(pk__in=waiting.values("license_id")).order_by("pk")
            )
        else:
            license = License.objects.filter(key=license_key).first()
            if license is None:
                raise CommandError(f"No license has the key '{license_key}'.")
            licenses = [license]
        for license in licenses:
            rows = rollups_rebuild(license=license)
            self.stdout.write(
                f"{license.key}: {rows:,} daily rollup rows rebuilt in {license.timezone}"
            )
