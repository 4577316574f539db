"""Staff roles are offered only the admin actions they may run (issue 18: Support was
offered django-axes' clean-up action, and it answered 500).

Every changelist of the admin, for Support and for Billing: each action offered in the
action menu is run (on every row, `select_across`) and must answer without a 403 or a 500.
"""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from accounts.roles import BILLING, SUPPORT
from tests.accounts.factories import UserFactory
from tests.conftest import staff_force_login
from tests.ledger import buy, record_usage

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows_everywhere(license_a):
    """A row in the lists an action acts on: ledger, balances, lockouts."""
    buy(license_a, "10")
    record_usage(license_a, "r-1", input_tokens=1000)
    seen = {
        "username": "x@alpha.example",
        "ip_address": "203.0.113.9",
        "user_agent": "probe",
        "http_accept": "*/*",
        "path_info": "/login/",
        "attempt_time": timezone.now() - timedelta(days=2),
    }
    AccessAttempt.objects.create(**seen, get_data="", post_data="", failures_since_start=3)
    AccessLog.objects.create(**seen)
    AccessFailureLog.objects.create(**seen, locked_out=False)


def role_client(client, group):
    user = UserFactory(email=f"{group.lower()}@portal.example", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    staff_force_login(client, user)
    return client


def registered_admins():
    return list(admin.site._registry.items())


@pytest.mark.parametrize("group", [SUPPORT, BILLING])
def test_every_action_offered_to_a_staff_role_runs(client, group, rows_everywhere):
    role_client(client, group)
    offered_somewhere = []
    for model, _model_admin in registered_admins():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        page = client.get(url)
        if page.status_code in (403, 404):
            continue  # not this role's list at all
        assert page.status_code == 200, (url, page.status_code)
        form = page.context.get("action_form")
        if form is None:
            continue
        names = [name for name, _label in form.fields["action"].choices if name]
        shown = list(page.context["cl"].result_list)
        # Django runs an action only with a row ticked; select_across makes it every row.
        ticked = [str(shown[0].pk)] if shown else ["0"]
        for name in names:
            offered_somewhere.append(f"{opts.label}.{name}")
            response = client.post(
                url,
                {
                    "action": name,
                    "select_across": "1",
                    "index": "0",
                    helpers.ACTION_CHECKBOX_NAME: ticked,
                },
            )
            assert response.status_code not in (403, 500), (url, name, response.status_code)
    # Support starts a sync; nobody in these roles cleans up lockouts or deletes rows.
    assert "usage.SyncState.sync_now" in offered_somewhere
    assert not [a for a in offered_somewhere if a.startswith("axes.")], offered_somewhere
    assert not [a for a in offered_somewhere if a.endswith(".delete_selected")], offered_somewhere


def test_every_admin_action_names_the_permissions_it_needs():
    """An action without `allowed_permissions` is offered to every staff login that can
    see the list: each one of ours, and of the libraries', must name what it needs."""
    ungated = []
    for model, model_admin in registered_admins():
        for func, name, _description in model_admin._get_base_actions():
            if not getattr(func, "allowed_permissions", None):
                ungated.append(f"{model._meta.label}.{name}")
    assert ungated == []


def test_a_superuser_still_cleans_up_expired_lockouts(admin_client, rows_everywhere):
    url = reverse("admin:axes_accessattempt_changelist")
    page = admin_client.get(url)
    names = [n for n, _ in page.context["action_form"].fields["action"].choices if n]
    assert "cleanup_expired_attempts" in names
    response = admin_client.post(
        url,
        {
            "action": "cleanup_expired_attempts",
            "select_across": "1",
            "index": "0",
            helpers.ACTION_CHECKBOX_NAME: [str(AccessAttempt.objects.get().pk)],
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "Cleaned up" in response.content.decode()
