"""Staff roles. The groups are created by a data migration; their permissions are
recomputed after every migrate, so a model added later is covered automatically.

- Support: may view everything, change nothing.
- Billing: Support, plus recording purchases and issuing refunds.
"""

from django.contrib.auth.models import Group, Permission

SUPPORT = "Support"
BILLING = "Billing"
STAFF_APPS = ("accounts", "billing", "usage", "auth", "axes")
BILLING_EXTRA = ("billing.issue_refund", "billing.record_purchase")


def roles_sync(**kwargs) -> None:
    view = Permission.objects.filter(
        content_type__app_label__in=STAFF_APPS, codename__startswith="view_"
    )
    extra = Permission.objects.none()
    for name in BILLING_EXTRA:
        app_label, codename = name.split(".")
        extra |= Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    support, _ = Group.objects.get_or_create(name=SUPPORT)
    billing, _ = Group.objects.get_or_create(name=BILLING)
    support.permissions.set(view)
    billing.permissions.set(view | extra)
