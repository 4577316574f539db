"""`manage.py service_token_revoke --prefix tcs_XXXXXXXX`: revoke a service token (audited);
every request with it is refused from then on."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from provider.models import ServiceToken
from provider.services import service_token_revoke


class Command(BaseCommand):
    help = "Revoke a service token, named by its prefix (tcs_ and 8 hex digits)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--prefix", required=True, help="the token's prefix, e.g. tcs_1a2b3c4d")
        parser.add_argument("--reason", default="", help="why (kept in the audit trail)")

    def handle(self, *args: Any, **options: Any) -> None:
        # A whole token pasted by mistake is cut to its prefix, never stored or echoed.
        prefix = options["prefix"].strip()[:12]
        token = ServiceToken.objects.filter(prefix=prefix).first()
        if token is None:
            raise CommandError("No service token has that prefix.")
        if token.revoked_at is not None:
            self.stderr.write(f"Service token {token.display} was already revoked.")
            return
        service_token_revoke(acting_user=None, token=token, reason=options["reason"])
        self.stderr.write(f"Service token {token.display} '{token.name}' revoked.")
