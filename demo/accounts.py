"""The demo licenses and logins (`manage.py seed_demo`). Idempotent."""

import base64
from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import Group
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Domain, License, Membership, User
from accounts.otp import staff_otp_enrol
from accounts.roles import BILLING, SUPPORT
from accounts.services import domain_save, license_save, membership_save

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - documented demo password
# The demo staff logins' TOTP secret (base32, for an authenticator app), in the README and
# `make run`'s banner, so a newcomer can still log in to the admin. Never reuse it.
DEMO_TOTP_SECRET = base64.b32encode(b"portal-demo-totp-key").decode()
DEMO_RECOVERY_CODES = ["demo-recovery-1", "demo-recovery-2", "demo-recovery-3"]


@dataclass(frozen=True)
class DemoLicense:
    key: str
    name: str
    license_type: str
    timezone: str
    domains: tuple[str, ...]
    contact_email: str
    member_since: date


ACME = DemoLicense(
    key="ACME-PRO-0001",
    name="Acme Analytics",
    license_type=License.Type.PROFESSIONAL,
    timezone="America/New_York",
    domains=("acme.example", "api.acme.example"),
    contact_email="alice@acme.example",
    member_since=date(2025, 3, 14),
)
GLOBEX = DemoLicense(
    key="GLOBEX-STD-0002",
    name="Globex Labs",
    license_type=License.Type.STANDARD,
    timezone="Europe/Berlin",
    domains=("globex.example",),
    contact_email="bob@globex.example",
    member_since=date(2025, 9, 2),
)
DEMO_LICENSES = (ACME, GLOBEX)

# email -> (license keys with roles, staff group, superuser)
DEMO_LOGINS = {
    "alice@acme.example": ({ACME.key: Membership.Role.OWNER}, None, False),
    "bob@globex.example": ({GLOBEX.key: Membership.Role.OWNER}, None, False),
    "carol@multi.example": (
        {ACME.key: Membership.Role.MEMBER, GLOBEX.key: Membership.Role.MEMBER},
        None,
        False,
    ),
    "staff@portal.example": ({}, SUPPORT, False),
    "billing@portal.example": ({}, BILLING, False),
    "admin@portal.example": ({}, None, True),
}


@transaction.atomic
def seed_demo_accounts() -> dict[str, License]:
    licenses = {}
    for demo in DEMO_LICENSES:
        license = License.objects.filter(key=demo.key).first()
        if license is None:
            license = license_save(
                acting_user=None,
                license=License(
                    key=demo.key,
                    name=demo.name,
                    license_type=demo.license_type,
                    timezone=demo.timezone,
                    contact_email=demo.contact_email,
                    member_since=demo.member_since,
                ),
                reason="demo data",
            )
        for i, hostname in enumerate(demo.domains):
            if not Domain.objects.filter(hostname=hostname).exists():
                domain_save(
                    acting_user=None,
                    domain=Domain(license=license, hostname=hostname, is_primary=i == 0),
                )
        licenses[demo.key] = license

    for email, (memberships, group, superuser) in DEMO_LOGINS.items():
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(
                email=email,
                password=DEMO_PASSWORD,
                is_staff=bool(group) or superuser,
                is_superuser=superuser,
            )
        if group:
            user.groups.add(Group.objects.get(name=group))
        if user.is_staff and not TOTPDevice.objects.filter(user=user).exists():
            staff_otp_enrol(
                acting_user=None,
                user=user,
                secret=base64.b32decode(DEMO_TOTP_SECRET),
                recovery_codes=DEMO_RECOVERY_CODES,
            )
        for key, role in memberships.items():
            license = licenses[key]
            if not Membership.objects.for_license(license).filter(user=user).exists():
                membership_save(
                    acting_user=None,
                    membership=Membership(license=license, user=user, role=role),
                )
    return licenses
