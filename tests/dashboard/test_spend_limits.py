"""Spend limits: owners set the floor (within the billing team's approval) and the monthly
cap on their page, the billing team in the console; every change is audited; members read."""

from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import AuditEvent, License, Membership
from billing.limits.selectors import spend_limits_get
from billing.models import SpendLimit
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.billing.conftest import StaffClient
from tests.ledger import buy

pytestmark = pytest.mark.django_db


def url(license: License) -> str:
    return f"/l/{license.public_id}/spend-limits/"


def staff_url(license: License) -> str:
    return f"/admin/billing/spendlimit/license/{license.pk}/"


@pytest.fixture
def owner(client: Client, license_a: License) -> Membership:
    membership = MembershipFactory(license=license_a, user=UserFactory(email="own@alpha.example"))
    client.force_login(membership.user)
    return membership


def test_an_owner_sets_a_monthly_cap_audited_and_shown(
    client: Client, owner: Membership, license_a: License
):
    buy(license_a, "20")
    response = client.post(url(license_a), {"overdraft": "0", "monthly_cap": "12.50"})
    assert response.status_code == 302
    limit = SpendLimit.objects.for_license(license_a).get()
    assert (limit.floor, limit.monthly_cap) == (Decimal("0"), Decimal("12.5"))
    event = AuditEvent.objects.get(action="spend_limit.update")
    assert event.actor == owner.user and event.license == license_a
    assert event.changes == {"monthly_cap": ["none", "12.500000"]}
    page = client.get(url(license_a)).content.decode()
    assert "Spend limits saved." in page
    assert 'data-testid="limits-cap">$12.500000' in page
    assert 'data-testid="limits-balance">$20.000000' in page
    assert 'data-testid="limits-available">$12.500000' in page
    assert 'data-testid="limits-as-of"' in page


def test_an_owner_cannot_go_below_zero_without_the_billing_teams_approval(
    client: Client, owner: Membership, license_a: License
):
    response = client.post(url(license_a), {"overdraft": "5", "monthly_cap": ""})
    assert response.status_code == 200
    assert "needs the billing team" in response.content.decode()
    assert spend_limits_get(license=license_a).floor == 0
    assert not AuditEvent.objects.filter(action="spend_limit.update").exists()


def test_a_member_reads_the_limits_but_only_an_owner_changes_them(
    client: Client, license_a: License
):
    member = MembershipFactory(license=license_a, role=Membership.Role.MEMBER).user
    client.force_login(member)
    page = client.get(url(license_a))
    assert page.status_code == 200
    assert "Only an owner of this license changes its spend limits." in page.content.decode()
    refused = client.post(url(license_a), {"overdraft": "0", "monthly_cap": "1"})
    assert refused.status_code == 403
    assert not SpendLimit.objects.exists()


def test_another_licenses_login_gets_a_404(client: Client, license_a: License, member_b: object):
    client.force_login(member_b)  # type: ignore[arg-type]
    assert client.get(url(license_a)).status_code == 404


def test_the_billing_team_approves_an_overdraft_and_owners_use_it_within_it(
    billing_client: StaffClient, license_a: License
):
    response = billing_client.post(
        staff_url(license_a),
        {
            "overdraft_approved": "50",
            "overdraft": "20",
            "monthly_cap": "",
            "reason": "enterprise contract, net 30",
        },
    )
    assert response.status_code == 302
    figures = spend_limits_get(license=license_a)
    assert (figures.overdraft_approved, figures.floor) == (Decimal("50"), Decimal("-20"))
    event = AuditEvent.objects.get(action="spend_limit.update")
    assert event.actor == billing_client.user and event.reason == "enterprise contract, net 30"
    assert event.changes["overdraft_approved"] == ["0.000000", "50.000000"]
    assert SpendLimit.objects.get().overdraft_approved_by == billing_client.user

    owner = MembershipFactory(license=license_a).user
    billing_client.force_login(owner)
    assert billing_client.post(url(license_a), {"overdraft": "50"}).status_code == 302
    assert spend_limits_get(license=license_a).floor == Decimal("-50")
    too_far = billing_client.post(url(license_a), {"overdraft": "50.01"})
    assert "down to −$50.000000 at most" in too_far.content.decode()
    assert spend_limits_get(license=license_a).floor == Decimal("-50")


def test_support_reads_the_limits_in_the_console_but_cannot_change_them(
    support_client: StaffClient, license_a: License
):
    page = support_client.get(staff_url(license_a))
    assert (
        page.status_code == 200 and "Changing them needs the Billing role" in page.content.decode()
    )
    refused = support_client.post(
        staff_url(license_a),
        {"overdraft_approved": "50", "overdraft": "0", "reason": "please"},
    )
    assert refused.status_code == 403
    assert not SpendLimit.objects.exists()
    console = support_client.get(f"/admin/accounts/license/{license_a.pk}/change/")
    assert "Spend limits" in console.content.decode()
