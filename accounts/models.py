"""Logins, licenses (the tenant), their domains and memberships, alert recipients, sessions and the audit trail."""

import uuid
import zoneinfo
from datetime import date, datetime, time
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.domains import normalize_domain
from portal.models import TenantQuerySet, TimeStampedModel
from portal.months import month_of


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            f"'{value}' is not a known time zone (use an IANA name like Europe/Berlin)."
        )


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email):
        return (email or "").strip().lower()

    def get_by_natural_key(self, username):
        return self.get(email__iexact=self.normalize_email(username))

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("A login needs an email address")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A login: an email and a password. Emails are stored lowercase and unique."""

    email = models.EmailField("email address", max_length=254, unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField("staff status", default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_unique_ci"),
        ]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = User.objects.normalize_email(self.email)
        clash = User.objects.filter(email__iexact=self.email).exclude(pk=self.pk)
        if self.email and clash.exists():
            raise ValidationError({"email": "A login with this email address already exists."})

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name or self.email


class Session(AbstractBaseSession):
    """A browser's session (Django's), with the login it belongs to beside its data (the
    `_auth_user_id` inside it, written on each save: accounts/sessions.py), so that deleting
    a login deletes its sessions. Who is logged in is always read from the data."""

    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="sessions"
    )

    class Meta(AbstractBaseSession.Meta):
        db_table = "accounts_session"


class AccessRefusal(NamedTuple):
    """Why a license's pages and API refuse everything: a code for programs, words for people."""

    code: str
    message: str


class License(TimeStampedModel):
    """The tenant: one customer account."""

    class Type(models.TextChoices):
        TRIAL = "trial", "Trial"
        STANDARD = "standard", "Standard"
        PROFESSIONAL = "professional", "Professional"
        ENTERPRISE = "enterprise", "Enterprise"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    key = models.CharField(
        "license key",
        max_length=64,
        unique=True,
        help_text="Identifies the license to the upstream API. Letters, digits, '-' and '_'.",
    )
    license_type = models.CharField(max_length=20, choices=Type.choices, default=Type.STANDARD)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    contact_email = models.EmailField()
    member_since = models.DateField(default=timezone.localdate)
    timezone = models.CharField(
        max_length=64, default=settings.TIME_ZONE, validators=[validate_timezone]
    )
    low_balance_threshold = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        default=Decimal("1.000000"),
        validators=[MinValueValidator(Decimal("0"))],
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(low_balance_threshold__gte=0),
                name="license_threshold_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(key__regex=r"^[A-Za-z0-9_-]{6,64}$"),
                name="license_key_format",
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self) -> str:
        """The license's home page for its members. The customer pages sit above this app,
        so the project wires the URL in settings.ABSOLUTE_URL_OVERRIDES (Django replaces
        this method with it); lower apps link to a license only through this method."""
        raise ImproperlyConfigured("settings.ABSOLUTE_URL_OVERRIDES names no accounts.license")

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def local_date(self, moment: datetime | None = None) -> date:
        """The day `moment` (default: now) falls on in the license's timezone: the one
        spelling of "the license's today" (invariant 8)."""
        return timezone.localtime(moment or timezone.now(), self.tzinfo).date()

    def local_month(self, moment: datetime | None = None) -> date:
        """The month (its first day) `moment` (default: now) falls in, in the license's
        timezone."""
        return month_of(self.local_date(moment))

    def local_start(self, day: date) -> datetime:
        """The moment `day` begins in the license's timezone (its local midnight)."""
        return datetime.combine(day, time.min, tzinfo=self.tzinfo)

    @property
    def is_closed(self) -> bool:
        return self.status == self.Status.CLOSED

    @property
    def is_suspended(self) -> bool:
        return self.status == self.Status.SUSPENDED

    def access_refusal(self) -> "AccessRefusal | None":
        """Why nothing of this license may be read or done any more, or None: the one rule
        the customer pages (accounts.mixins.LicenseMixin) and the API (api/v1/auth.py) apply.
        A closed license is refused everywhere; a suspended one still shows its data (the
        dashboard says it is suspended, the API's license says so in its status)."""
        if self.is_closed:
            return AccessRefusal(
                "license_closed",
                "This license is closed, so its dashboard, history, tools and API are no "
                "longer available. If you think this is a mistake, contact billing support.",
            )
        return None

    @property
    def masked_key(self) -> str:
        return (
            f"{self.key[:4]}{'•' * 8}{self.key[-4:]}" if len(self.key) > 8 else "•" * len(self.key)
        )


class Domain(TimeStampedModel):
    """A hostname registered to a license, stored normalized and unique across licenses."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="domains")
    hostname = models.CharField(max_length=253, unique=True)
    is_primary = models.BooleanField(default=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["license"],
                condition=models.Q(is_primary=True),
                name="domain_one_primary_per_license",
            ),
            models.CheckConstraint(
                condition=models.Q(hostname=Lower("hostname")), name="domain_hostname_lowercase"
            ),
        ]

    def __str__(self):
        return self.hostname

    def clean(self):
        super().clean()
        try:
            self.hostname = normalize_domain(self.hostname)
        except ValidationError as exc:
            raise ValidationError({"hostname": exc.messages}) from exc
        clash = Domain.objects.filter(hostname=self.hostname).exclude(pk=self.pk)
        if clash.exists():
            raise ValidationError({"hostname": "This domain is already registered to a license."})


class Membership(TimeStampedModel):
    """A login's membership of a license."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    receives_alerts = models.BooleanField(
        default=True, help_text="Gets the license's low-balance emails."
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["license", "user"], name="membership_unique"),
        ]

    def __str__(self):
        return f"{self.user} @ {self.license} ({self.role})"


class AlertRecipient(TimeStampedModel):
    """An extra address (not a login) that gets a license's low-balance emails."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="alert_recipients")
    email = models.EmailField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "license", Lower("email"), name="alert_recipient_unique_per_license"
            ),
        ]

    def __str__(self):
        return self.email


class AuditEvent(models.Model):
    """An append-only record of something a person (or the system) did: who, what, why."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    license = models.ForeignKey(
        License, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["license", "-created_at"], name="audit_license_recent")]

    def __str__(self):
        return (
            f"{self.created_at:%Y-%m-%d %H:%M} {self.actor or 'system'} {self.action} {self.target}"
        )
