"""`manage.py api_key_create`: an API key for a license, printed once, for operations."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import License
from api.services import api_key_create
from portal.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Make an API key for a license and print it once (it is stored only as a hash)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--license", required=True, help="the license key")
        parser.add_argument("--name", required=True, help="what the key is for")

    def handle(self, *args: Any, **options: Any) -> None:
        license = License.objects.filter(key=options["license"]).first()
        if license is None:
            raise CommandError("No license has that key.")
        try:
            key, raw = api_key_create(acting_user=None, license=license, name=options["name"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(
            f"API key {key.display} '{key.name}' for {license.name} (license id "
            f"{license.public_id}). It is shown once; store it now."
        )
        self.stdout.write(raw)
