"""`manage.py credit_grant` and `manage.py credits_expire`: what operations type, what they
refuse (exit 2, with the reason), the four-eyes rule above the approval limit, the audit
trail, and the beat that runs the expiry."""

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEvent, License, User
from accounts.roles import BILLING, SUPPORT
from billing.credits.approvals import credit_approval_approve
from billing.models import CreditApproval, CreditGrant, LedgerEntry
from tests.accounts.factories import LicenseFactory, UserFactory
from tests.ledger import assert_ledger_consistent
from tests.processes import child_env

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 10, 12, tzinfo=UTC)


@pytest.fixture
def ny(db: None) -> License:
    return LicenseFactory(key="NY-GRANT-01", timezone="America/New_York")


def run(*args: str) -> str:
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command(*args, stdout=out)
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as exc, time_machine.travel(NOW, tick=False):
        call_command(*args, stdout=StringIO())
    assert exc.value.returncode == 2
    return str(exc.value)


def grant_args(license: License, by: User, **changes: str) -> list[str]:
    args = {
        "--license": license.key,
        "--amount": "25",
        "--kind": "promotional",
        "--reason": "Spring promotion",
        "--by": by.email,
        **changes,
    }
    return ["credit_grant", *(x for pair in args.items() for x in pair if pair[1] is not None)]


def test_a_promotional_grant_usable_through_a_day_in_the_licenses_timezone(
    ny: License, billing_user: User
) -> None:
    out = run(*grant_args(ny, billing_user, **{"--expires": "2025-06-30", "--key": "spring-1"}))
    assert "$25.000000 of promotional credit to NY-GRANT-01, usable through 2025-06-30" in out
    grant = CreditGrant.objects.get(license=ny)
    assert (grant.kind, grant.amount, grant.entry.kind) == ("promotional", Decimal("25"), "credit")
    # It expires at the local midnight after the day: 04:00 UTC in New York's summer.
    assert grant.expires_at == datetime(2025, 7, 1, 4, tzinfo=UTC)
    assert grant.entry.reason == "Spring promotion" and grant.entry.created_by == billing_user
    event = AuditEvent.objects.get(action="refund.issue")
    assert event.actor == billing_user
    assert event.changes["expires_at"] == "2025-07-01T00:00:00-04:00"
    # The same key again grants nothing more.
    again = run(*grant_args(ny, billing_user, **{"--expires": "2025-06-30", "--key": "spring-1"}))
    assert "already granted" in again
    assert CreditGrant.objects.filter(license=ny).count() == 1
    assert_ledger_consistent(ny)


def test_paid_credit_recorded_by_hand_never_expires_without_a_date(
    ny: License, billing_user: User
) -> None:
    run(*grant_args(ny, billing_user, **{"--kind": "paid", "--amount": "$450.50"}))
    grant = CreditGrant.objects.get(license=ny)
    assert (grant.kind, grant.amount, grant.expires_at) == ("paid", Decimal("450.50"), None)
    assert grant.entry.kind == "purchase" and grant.entry.reason == "Spring promotion"
    assert AuditEvent.objects.get(action="purchase.record").reason == "Spring promotion"


def test_above_the_approval_limit_a_grant_waits_for_a_second_billing_member(
    ny: License, billing_user: User
) -> None:
    out = run(*grant_args(ny, billing_user, **{"--amount": "600", "--expires": "2025-12-31"}))
    assert "Credit approval #" in out and "second Billing member" in out
    assert not LedgerEntry.objects.filter(license=ny).exists()
    approval = CreditApproval.objects.get(license=ny)
    assert approval.expires_at == datetime(2026, 1, 1, 5, tzinfo=UTC)
    with pytest.raises(Exception, match="four eyes"):
        credit_approval_approve(acting_user=billing_user, approval_id=approval.pk)
    second = UserFactory(email="second@portal.example", is_staff=True)
    second.groups.add(Group.objects.get(name=BILLING))
    with time_machine.travel(NOW, tick=False):
        credit_approval_approve(acting_user=second, approval_id=approval.pk)
    grant = CreditGrant.objects.get(license=ny)
    assert (grant.amount, grant.expires_at) == (Decimal("600"), approval.expires_at)
    assert grant.entry.created_by == second
    assert_ledger_consistent(ny)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"--license": "NOPE-0000"}, "No license has the key 'NOPE-0000'"),
        ({"--amount": "0,50"}, "--amount: '0,50' is ambiguous"),
        ({"--amount": "abc"}, "--amount: 'abc' is not an amount"),
        ({"--amount": "1.0000001"}, "at most 6 decimal places"),
        ({"--amount": "-5"}, "--amount: a credit is a positive amount"),
        ({"--amount": "０5"}, "digits other than 0-9"),
        ({"--kind": "gift"}, "--kind: 'gift' is not a kind of credit"),
        ({"--reason": "  "}, "--reason: say why"),
        (
            {"--expires": "30/06/2025"},
            "--expires: '30/06/2025' is not a day; write it as YYYY-MM-DD",
        ),
        ({"--expires": "2025-06-09"}, "--expires: 2025-06-09 has passed"),
        ({"--by": "nobody@example.com"}, "--by: 'nobody@example.com' is not an active staff login"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    ny: License, billing_user: User, changes: dict[str, str], message: str
) -> None:
    assert message in refused(*grant_args(ny, billing_user, **changes))
    assert not LedgerEntry.objects.exists() and not CreditApproval.objects.exists()


def test_a_login_without_the_permission_may_not_grant(ny: License) -> None:
    support = UserFactory(email="sue@portal.example", is_staff=True)
    support.groups.add(Group.objects.get(name=SUPPORT))
    message = refused(*grant_args(ny, support))
    assert "may not grant promotional credit (billing.issue_refund)" in message
    customer = UserFactory(email="cus@alpha.example")
    assert "not an active staff login" in refused(*grant_args(ny, customer))


def test_credits_expire_runs_once_and_refuses_bad_moments(ny: License, billing_user: User) -> None:
    run(*grant_args(ny, billing_user, **{"--amount": "3", "--expires": "2025-06-12"}))
    out = StringIO()
    with time_machine.travel(NOW + timedelta(days=5), tick=False):
        call_command("credits_expire", stdout=out)
        call_command("credits_expire", stdout=out)
    lines = out.getvalue().splitlines()
    assert "1 grant(s) expired" in lines[0] and "$3.000000 left 1 balance(s)" in lines[0]
    assert "0 grant(s) expired" in lines[1]
    [expiry] = LedgerEntry.objects.filter(license=ny, kind="expiry")
    assert expiry.amount == Decimal("-3")
    for at, message in (
        ("yesterday", "is not an ISO 8601 moment"),
        ("2025-06-01T00:00:00", "has no offset"),
        ("2999-01-01T00:00:00+00:00", "cannot be in the future"),
    ):
        with pytest.raises(CommandError, match=message) as exc:
            call_command("credits_expire", "--at", at, stdout=StringIO())
        assert exc.value.returncode == 2


def test_credits_expire_as_of_a_moment_expires_only_what_was_due_then(
    ny: License, billing_user: User
) -> None:
    run(*grant_args(ny, billing_user, **{"--amount": "1", "--expires": "2025-06-12"}))
    run(*grant_args(ny, billing_user, **{"--amount": "2", "--expires": "2025-06-20"}))
    call_command("credits_expire", "--at", "2025-06-15T00:00:00+00:00", stdout=StringIO())
    assert [e.amount for e in LedgerEntry.objects.filter(kind="expiry")] == [Decimal("-1")]
    due = CreditGrant.objects.get(amount=1).expires_at
    assert due is not None and due.date() == date(2025, 6, 13)


def test_the_beat_expires_credits_every_five_minutes() -> None:
    from portal.celery import app

    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["billing-expire-credits-every-five-minutes"]
    assert entry["task"] == "billing.expire_credits" and entry["schedule"] == 300
    assert entry["options"]["expires"] < entry["schedule"]
    assert "billing.expire_credits" in app.tasks


def test_the_real_commands_exit_2_on_bad_arguments() -> None:
    """The process's exit status, as an operator's shell or a scheduler sees it."""

    def status(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=Path(settings.BASE_DIR),
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    missing = status("credit_grant", "--license", "X")
    assert missing.returncode == 2 and "required" in missing.stderr
    bad = status("credits_expire", "--at", "soon")
    assert bad.returncode == 2 and "is not an ISO 8601 moment" in bad.stderr
