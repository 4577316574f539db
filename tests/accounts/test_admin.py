"""Staff side: the admin for superusers, Support (read-only) and Billing logins."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from accounts.models import AuditEvent, Domain, License, Membership, User
from accounts.roles import BILLING, SUPPORT
from demo.accounts import DEMO_LOGINS
from tests.accounts.factories import DomainFactory, LicenseFactory, UserFactory
from tests.conftest import staff_force_login

pytestmark = pytest.mark.django_db


def staff(client, *, group=None, superuser=False):
    user = UserFactory(
        email=f"{group or 'root'}@portal.example", is_staff=True, is_superuser=superuser
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    staff_force_login(client, user)
    return user


def license_form(**overrides):
    data = {
        "name": "Initech",
        "key": "INITECH-0001",
        "license_type": "enterprise",
        "status": "active",
        "contact_email": "ops@initech.example",
        "member_since": "2026-01-05",
        "timezone": "Asia/Tokyo",
        "low_balance_threshold": "5.00",
        "domains-TOTAL_FORMS": "1",
        "domains-INITIAL_FORMS": "0",
        "domains-0-hostname": "HTTPS://Initech.Example/",
        "domains-0-is_primary": "on",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_superuser_creates_a_license_with_a_normalized_domain_and_it_is_audited(client):
    root = staff(client, superuser=True)
    response = client.post("/admin/accounts/license/add/", license_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    license = License.objects.get(key="INITECH-0001")
    assert list(license.domains.values_list("hostname", flat=True)) == ["initech.example"]
    actions = set(AuditEvent.objects.filter(actor=root).values_list("action", flat=True))
    assert {"license.create", "domain.create"} <= actions


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "not a known time zone"),
        ({"low_balance_threshold": "-1"}, "low_balance_threshold", "greater than or equal to 0"),
        ({"domains-0-hostname": "not a domain"}, "hostname", "not a valid domain"),
        ({"key": "bad key!"}, "key", ""),
    ],
)
def test_bad_license_input_names_the_field_and_saves_nothing(client, override, field, message):
    staff(client, superuser=True)
    response = client.post("/admin/accounts/license/add/", license_form(**override))
    assert response.status_code == 200
    body = response.content.decode()
    assert "errorlist" in body
    assert message in body
    assert not License.objects.filter(key=license_form(**override)["key"]).exists()
    assert not Domain.objects.exists()


def test_a_domain_registered_elsewhere_is_refused(client):
    DomainFactory(hostname="initech.example")
    staff(client, superuser=True)
    response = client.post("/admin/accounts/license/add/", license_form())
    assert response.status_code == 200
    assert "already registered" in response.content.decode()
    assert not License.objects.filter(key="INITECH-0001").exists()


def test_duplicate_login_email_is_refused_whatever_the_case(client):
    UserFactory(email="dave@customer.example")
    staff(client, superuser=True)
    response = client.post(
        "/admin/accounts/user/add/",
        {"email": "DAVE@customer.example", "password1": "x-long-pass-991", "password2": "x-long-pass-991",
         "usable_password": "true", "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.filter(email__iexact="dave@customer.example").count() == 1


def test_support_reads_everything_and_changes_nothing(client):
    license = LicenseFactory(name="Readonly Co")
    staff(client, group=SUPPORT)
    for url in ["/admin/accounts/license/", f"/admin/accounts/license/{license.pk}/change/",
                "/admin/accounts/domain/", "/admin/accounts/membership/", "/admin/accounts/user/",
                "/admin/accounts/auditevent/"]:  # fmt: skip
        assert client.get(url).status_code == 200, url
    change = client.post(
        f"/admin/accounts/license/{license.pk}/change/",
        license_form(name="Hacked", key=license.key),
    )
    assert change.status_code == 403
    assert client.get("/admin/accounts/license/add/").status_code == 403
    assert client.post("/admin/accounts/license/add/", license_form()).status_code == 403
    license.refresh_from_db()
    assert license.name == "Readonly Co"
    assert not License.objects.filter(key="INITECH-0001").exists()


def test_support_has_only_view_permissions_and_sync_now():
    support = Group.objects.get(name=SUPPORT)
    codenames = set(support.permissions.values_list("codename", flat=True))
    assert codenames
    # Issue 16: Support may also start a usage sync ("Sync now", audited).
    assert all(c.startswith("view_") for c in codenames - {"sync_now"})
    assert "sync_now" in codenames
    assert {"view_license", "view_ledgerentry", "view_domain"} <= codenames


def test_billing_is_support_plus_purchases_refunds_and_spend_limits():
    support = set(Group.objects.get(name=SUPPORT).permissions.values_list("codename", flat=True))
    billing = set(Group.objects.get(name=BILLING).permissions.values_list("codename", flat=True))
    assert billing - support == {
        "issue_refund",
        "record_purchase",
        "close_month",
        "approve_overdraft",
    }
    assert "sync_now" in support


def test_billing_login_can_open_the_admin_but_not_edit_licenses(client):
    license = LicenseFactory()
    staff(client, group=BILLING)
    assert client.get("/admin/").status_code == 200
    assert client.get(f"/admin/accounts/license/{license.pk}/change/").status_code == 200
    assert (
        client.post(f"/admin/accounts/license/{license.pk}/change/", license_form()).status_code
        == 403
    )


def test_customer_logins_cannot_enter_the_admin(client_a):
    # Issue 16: a plain 404 (the admin does not exist for customers), not the admin login.
    response = client_a.get("/admin/")
    assert response.status_code == 404


def test_timezone_change_by_staff_is_audited_with_old_and_new(client):
    root = staff(client, superuser=True)
    license = LicenseFactory(timezone="UTC")
    data = license_form(
        name=license.name, key=license.key, timezone="Europe/Berlin",
        **{"domains-TOTAL_FORMS": "0", "domains-0-hostname": ""},
    )  # fmt: skip
    response = client.post(f"/admin/accounts/license/{license.pk}/change/", data)
    assert response.status_code == 302
    event = AuditEvent.objects.get(actor=root, action="license.update")
    assert event.changes["timezone"] == ["UTC", "Europe/Berlin"]


def test_seed_demo_twice_leaves_one_of_each():
    # Accounts only; tests/usage covers the demo usage and money from the simulator.
    call_command("seed_demo", no_usage=True)
    call_command("seed_demo", no_usage=True)
    assert License.objects.filter(name__in=["Acme Analytics", "Globex Labs"]).count() == 2
    assert User.objects.filter(email__in=DEMO_LOGINS).count() == len(DEMO_LOGINS)
    assert (
        Domain.objects.filter(
            hostname__in=["acme.example", "api.acme.example", "globex.example"]
        ).count()
        == 3
    )
    carol = User.objects.get(email="carol@multi.example")
    assert Membership.objects.filter(user=carol).count() == 2
    acme = License.objects.get(name="Acme Analytics")
    assert (acme.license_type, acme.timezone) == ("professional", "America/New_York")
    assert User.objects.get(email="staff@portal.example").groups.get().name == SUPPORT
    assert User.objects.get(email="admin@portal.example").is_superuser


def test_the_admin_has_the_portals_favicon(client):
    """Issue 28: the admin's tabs had no icon (Django's admin links none, and the
    browser's /favicon.ico is a 404). Every admin page links the portal's, and it is served."""
    icon = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
    assert icon in client.get("/admin/login/").content.decode()
    staff(client, group=SUPPORT)
    for path in (
        "/admin/",
        "/admin/accounts/license/",
        "/admin/billing/ledgerentry/reconciliation/?month=2025-06",
        "/admin/billing/ledgerentry/",
    ):
        page = client.get(path)
        assert page.status_code == 200 and icon in page.content.decode(), path
    served = client.get("/static/favicon.svg")
    assert served.status_code == 200 and served["Content-Type"] == "image/svg+xml"
