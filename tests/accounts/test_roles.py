"""Staff roles after migrate and after a flush (what every transactional test ends with):
Support holds every view permission of the staff apps and Sync now, Billing that plus
purchases, refunds and closing a month, and the recomputation runs once per post_migrate round, not once per app."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import BILLING, BILLING_EXTRA, STAFF_APPS, SUPPORT, SUPPORT_EXTRA


def expected_roles() -> dict[str, set[str]]:
    view = {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(
            content_type__app_label__in=STAFF_APPS, codename__startswith="view_"
        ).select_related("content_type")
    }
    support = view | set(SUPPORT_EXTRA)
    return {SUPPORT: support, BILLING: support | set(BILLING_EXTRA)}


def stored_roles() -> dict[str, set[str]]:
    return {
        group.name: {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }
        for group in Group.objects.filter(name__in=[SUPPORT, BILLING])
    }


@pytest.mark.django_db
def test_after_migrate_the_roles_cover_every_staff_app_model():
    roles = stored_roles()
    assert roles == expected_roles()
    # The last app migrated (usage) is covered too: the sync ran after its permissions.
    assert {"usage.view_syncstate", "billing.view_ledgerentry", "axes.view_accessattempt"} <= (
        roles[SUPPORT]
    )


@pytest.mark.django_db(transaction=True)
def test_a_flush_recreates_the_roles_once_not_once_per_app():
    with CaptureQueriesContext(connection) as queries:
        call_command("flush", verbosity=0, interactive=False)
    assert stored_roles() == expected_roles()
    group_lookups = [
        q for q in queries if 'FROM "auth_group" WHERE "auth_group"."name"' in q["sql"]
    ]
    assert len(group_lookups) == 2  # Support and Billing, once


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_after_another_still_has_exact_roles():
    # The previous test's teardown flushed every table, auth_group included.
    assert stored_roles() == expected_roles()
    assert stored_roles()[BILLING] - stored_roles()[SUPPORT] == set(BILLING_EXTRA)
