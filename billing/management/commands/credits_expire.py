"""`manage.py credits_expire [--at ISO-8601]`

Expires every credit grant due by `--at` (now when not given; never later than now): what
is left of each leaves the balance as one `expiry` entry, once. What the beat runs
(billing.tasks.expire_credits); idempotent, so running it again, or beside another run,
changes nothing more. Exit status 0, or 2 for a bad argument."""

from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.credits.expiry import credits_expire
from billing.money import format_money
from portal.exceptions import ApplicationError

EXIT_BAD_ARGUMENT = 2


class Command(BaseCommand):
    help = "Expire the credit grants due by now (or --at); idempotent."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--at", help="ISO 8601 with its offset, e.g. 2026-01-01T00:00:00+00:00 (default now)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        at = None
        if options["at"]:
            try:
                at = datetime.fromisoformat(options["at"].strip())
            except ValueError as exc:
                raise CommandError(
                    f"--at: '{options['at']}' is not an ISO 8601 moment, e.g. "
                    "2026-01-01T00:00:00+00:00.",
                    returncode=EXIT_BAD_ARGUMENT,
                ) from exc
            if at.tzinfo is None:
                raise CommandError(
                    f"--at: '{options['at']}' has no offset; add one, e.g. +00:00.",
                    returncode=EXIT_BAD_ARGUMENT,
                )
        try:
            run = credits_expire(at=at)
        except ApplicationError as exc:
            raise CommandError(exc.message, returncode=EXIT_BAD_ARGUMENT) from exc
        left = [e for e in run.expired if e.entry is not None]
        self.stdout.write(
            f"{len(run.expired)} grant(s) expired as of {run.at.isoformat()}: "
            f"{format_money(run.amount)} left {len(left)} balance(s)."
        )
