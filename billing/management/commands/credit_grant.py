"""`manage.py credit_grant --license KEY --amount A --kind promotional|paid --reason TEXT
--by EMAIL [--expires YYYY-MM-DD] [--key IDEMPOTENCY-KEY]`

Grants credit to a license as the Billing member `--by` (audited, as their own act): a
promotional credit (goodwill, promotion, sign-up credit) or paid credit recorded by hand,
usable through the `--expires` day in the license's timezone (it expires at the local
midnight after it; without it, never). Above CREDIT_APPROVAL_LIMIT it is a request that a
second Billing member approves in the admin (four eyes). The same `--key` twice grants
once (one is made up, and printed, when not given). Exit status 0 when granted or asked
for, 2 for a bad argument or a refusal, with the reason."""

import uuid
from argparse import ArgumentParser
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import License, User
from billing.credits.services import credit_grant_issue
from billing.models import GrantKind
from billing.money import MONEY_PLACES, format_money
from portal.amounts import parse_amount
from portal.exceptions import ApplicationError

EXIT_BAD_ARGUMENT = 2

# Who may grant which kind: the permission of the admin form that posts the same entry.
PERMISSION = {
    GrantKind.PROMOTIONAL: "billing.issue_refund",
    GrantKind.PAID: "billing.record_purchase",
}


def _bad(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_BAD_ARGUMENT)


def expiry_of_day(license: License, day: date) -> datetime:
    """Credit usable through `day` expires at the license's local midnight after it."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=license.tzinfo)


class Command(BaseCommand):
    help = "Grant promotional or paid credit to a license (four eyes above the approval limit)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--license", required=True, help="the license key")
        parser.add_argument("--amount", required=True, help="dollars, e.g. 25 or 12.50")
        parser.add_argument("--kind", required=True, help="promotional or paid")
        parser.add_argument("--reason", required=True, help="why (the customer sees it)")
        parser.add_argument(
            "--by", required=True, help="email of the Billing member granting it (audited)"
        )
        parser.add_argument(
            "--expires", help="YYYY-MM-DD: usable through that day in the license's timezone"
        )
        parser.add_argument("--key", help="idempotency key: the same key twice grants once")

    def handle(self, *args: Any, **options: Any) -> None:
        license = License.objects.filter(key=options["license"]).first()
        if license is None:
            raise _bad(f"No license has the key '{options['license']}'.")
        kind = options["kind"].strip().lower()
        if kind not in GrantKind.values:
            raise _bad(
                f"--kind: '{options['kind']}' is not a kind of credit; say promotional or paid."
            )
        try:
            amount = parse_amount(options["amount"], places=MONEY_PLACES)
        except ValueError as exc:
            raise _bad(f"--amount: {exc}.") from exc
        if amount <= 0:
            raise _bad("--amount: a credit is a positive amount.")
        reason = options["reason"].strip()
        if not reason:
            raise _bad("--reason: say why the credit is granted.")
        expires_at = None
        if options["expires"]:
            try:
                day = date.fromisoformat(options["expires"].strip())
            except ValueError as exc:
                raise _bad(
                    f"--expires: '{options['expires']}' is not a day; write it as YYYY-MM-DD."
                ) from exc
            if day < license.local_date():
                raise _bad(
                    f"--expires: {day} has passed in the license's timezone "
                    f"({license.timezone}); credit expires on a day to come, or never."
                )
            expires_at = expiry_of_day(license, day)
        user = self._granting_user(options["by"], kind)
        key = options["key"] or uuid.uuid4().hex
        try:
            issued = credit_grant_issue(
                acting_user=user,
                license=license,
                amount=amount,
                kind=kind,
                reason=reason,
                idempotency_key=key,
                expires_at=expires_at,
            )
        except ApplicationError as exc:
            raise _bad(exc.message) from exc
        until = f", usable through {options['expires'].strip()}" if expires_at else ""
        what = f"{format_money(amount)} of {GrantKind(kind).label.lower()} to {license.key}{until}"
        if issued.approval is not None:
            state = "asked for" if issued.created else "already asked for"
            self.stdout.write(
                f"Credit approval #{issued.approval.pk} {state}: {what}. A second Billing "
                "member approves it in the admin (Credit approvals)."
            )
        elif issued.entry is not None:
            state = "granted" if issued.created else "already granted"
            self.stdout.write(self.style.SUCCESS(f"{what} {state}: entry #{issued.entry.pk}."))
        self.stdout.write(f"idempotency key: {key}")

    @staticmethod
    def _granting_user(email: str, kind: str) -> User:
        user = User.objects.filter(email__iexact=User.objects.normalize_email(email)).first()
        if user is None or not user.is_active or not user.is_staff:
            raise _bad(f"--by: '{email}' is not an active staff login.")
        if not user.has_perm(PERMISSION[GrantKind(kind)]):
            raise _bad(
                f"--by: {user.email} may not grant {GrantKind(kind).label.lower()} "
                f"({PERMISSION[GrantKind(kind)]})."
            )
        return user
