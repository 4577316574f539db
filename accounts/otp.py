"""Second factor for staff logins (django-otp): a TOTP authenticator and recovery codes.

Every staff login (superuser, Support, Billing) needs both to reach the admin
(accounts/admin_site.py). `manage.py staff_otp_enrol --email X` enrols one, printing the
secret (for an authenticator app) and ten single-use recovery codes, shown only then.
"""

import base64
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.audit import audit_record
from accounts.models import User

AUTHENTICATOR = "authenticator"
RECOVERY = "recovery codes"
RECOVERY_CODE_COUNT = 10


@dataclass(frozen=True)
class OtpEnrolment:
    secret: str  # base32, as authenticator apps take it
    otpauth_url: str
    recovery_codes: list[str]


@transaction.atomic
def staff_otp_enrol(
    *,
    acting_user: User | None,
    user: User,
    secret: bytes | None = None,
    recovery_codes: list[str] | None = None,
) -> OtpEnrolment:
    """Give `user` a new authenticator secret and new recovery codes (replacing any old
    ones); audited. `secret` and `recovery_codes` are for the demo's fixed ones."""
    key = secret if secret is not None else secrets.token_bytes(20)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, key=key.hex(), confirmed=True)
    codes = recovery_codes or [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    static = StaticDevice.objects.create(user=user, name=RECOVERY, confirmed=True)
    StaticToken.objects.bulk_create([StaticToken(device=static, token=c) for c in codes])
    audit_record(
        actor=acting_user,
        action="staff.otp_enrol",
        target=f"login {user.email}",
        changes={"recovery_codes": len(codes)},
    )
    secret_b32 = base64.b32encode(key).decode()
    issuer = quote(settings.OTP_TOTP_ISSUER)
    url = (
        f"otpauth://totp/{issuer}:{quote(user.email)}?secret={secret_b32}"
        f"&issuer={issuer}&digits=6&period=30"
    )
    return OtpEnrolment(secret_b32, url, codes)
