"""The owner's alert settings page."""

from decimal import Decimal

import pytest

from accounts.models import AlertRecipient, AuditEvent, Membership
from tests.accounts.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, license_a):
    owner = MembershipFactory(license=license_a, user=UserFactory(email="own@alpha.example"))
    client.force_login(owner.user)
    return client, owner


def url(license):
    return f"/l/{license.public_id}/settings/"


def test_owner_sets_threshold_recipients_and_extra_addresses(owner_client, license_a):
    client, owner = owner_client
    other = MembershipFactory(license=license_a, role="member")
    response = client.post(
        url(license_a),
        {
            "low_balance_threshold": "25.50",
            "alert_members": [str(owner.pk)],
            "extra_emails": "Finance@Alpha.example\n\nops@alpha.example\nfinance@alpha.example",
        },
    )
    assert response.status_code == 302
    license_a.refresh_from_db()
    assert license_a.low_balance_threshold == Decimal("25.500000")
    assert Membership.objects.get(pk=other.pk).receives_alerts is False
    assert Membership.objects.get(pk=owner.pk).receives_alerts is True
    assert sorted(AlertRecipient.objects.values_list("email", flat=True)) == [
        "finance@alpha.example",
        "ops@alpha.example",
    ]
    event = AuditEvent.objects.get(action="license.alert_settings")
    assert event.actor == owner.user
    assert event.changes["low_balance_threshold"] == ["1.000000", "25.500000"]
    page = client.get(url(license_a)).content.decode()
    assert "Alert settings saved." in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"low_balance_threshold": "-1"}, "Low-balance threshold ($): Ensure this value is greater than or equal to 0"),
        ({"low_balance_threshold": "1.1234567"}, "Low-balance threshold ($): Ensure that there are no more than 6 decimal places"),
        ({"low_balance_threshold": "lots"}, "Low-balance threshold ($): Enter a number"),
        ({"extra_emails": "ok@alpha.example\nnot-an-address"}, "Extra addresses: line 2 (&#x27;not-an-address&#x27;) is not an email address."),
    ],
)  # fmt: skip
def test_bad_input_is_refused_field_by_field_and_nothing_is_saved(
    owner_client, license_a, data, message
):
    client, _owner = owner_client
    form = {"low_balance_threshold": "5", "extra_emails": "", **data}
    response = client.post(url(license_a), form)
    assert response.status_code == 200
    assert message in response.content.decode()
    license_a.refresh_from_db()
    assert license_a.low_balance_threshold == Decimal("1.000000")
    assert not AlertRecipient.objects.exists()
    assert not AuditEvent.objects.filter(action="license.alert_settings").exists()


def test_plain_member_is_told_only_owners_can(client, license_a):
    member = MembershipFactory(
        license=license_a, user=UserFactory(email="mem@alpha.example"), role="member"
    )
    client.force_login(member.user)
    response = client.post(url(license_a), {"low_balance_threshold": "99"})
    assert response.status_code == 403
    assert "Only the license owner" in response.content.decode()
    license_a.refresh_from_db()
    assert license_a.low_balance_threshold == Decimal("1.000000")
