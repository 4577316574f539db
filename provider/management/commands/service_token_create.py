"""`manage.py service_token_create --name NAME`: a service token for the provider's systems
(push ingestion, the gate), printed once."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.exceptions import ApplicationError
from provider.services import service_token_create


class Command(BaseCommand):
    help = "Make a service token and print it once (it is stored only as a hash)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--name", required=True, help="what the token is for")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token, raw = service_token_create(acting_user=None, name=options["name"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(
            f"Service token {token.display} '{token.name}'. It is shown once; store it now."
        )
        self.stdout.write(raw)
