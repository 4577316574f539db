"""manage.py staff_otp_enrol --email X: a new authenticator secret and recovery codes."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from accounts.otp import staff_otp_enrol


class Command(BaseCommand):
    help = "Enrol a staff login's second factor (TOTP) and print its recovery codes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email__iexact=options["email"].strip()).first()
        if user is None or not user.is_staff:
            raise CommandError(f"No staff login {options['email']!r}.", returncode=2)
        enrolment = staff_otp_enrol(acting_user=None, user=user)
        self.stdout.write(
            "\n".join(
                [
                    f"Authenticator secret for {user.email}: {enrolment.secret}",
                    f"  (or open: {enrolment.otpauth_url})",
                    "Recovery codes (each works once; shown only now):",
                    *[f"  {code}" for code in enrolment.recovery_codes],
                ]
            )
        )
