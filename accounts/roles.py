"""Staff roles. The groups are created by a data migration; their permissions are
recomputed after every migrate, so a model added later is covered automatically.

- Support: may view everything and start a usage sync ("Sync now", audited); changes
  nothing else.
- Billing: Support, plus recording purchases, issuing refunds and closing a reconciled
  month. (Reopening a closed month is for superusers only, billing.closing.services.)
"""

from django.contrib.auth.models import Group, Permission
from django.db import models

SUPPORT = "Support"
BILLING = "Billing"
# Every app with staff-visible rows (names only: roles are wired by string, not import).
STAFF_APPS = ("accounts", "billing", "usage", "payments", "api", "auth", "axes")
SUPPORT_EXTRA = ("usage.sync_now",)
BILLING_EXTRA = ("billing.issue_refund", "billing.record_purchase", "billing.close_month")


def _permissions(names: tuple[str, ...]) -> "models.QuerySet[Permission]":
    found = Permission.objects.none()
    for name in names:
        app_label, codename = name.split(".")
        found |= Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    return found


def roles_sync(**kwargs: object) -> None:
    view = Permission.objects.filter(
        content_type__app_label__in=STAFF_APPS, codename__startswith="view_"
    )
    support_perms = view | _permissions(SUPPORT_EXTRA)
    support, _ = Group.objects.get_or_create(name=SUPPORT)
    billing, _ = Group.objects.get_or_create(name=BILLING)
    support.permissions.set(support_perms)
    billing.permissions.set(support_perms | _permissions(BILLING_EXTRA))
