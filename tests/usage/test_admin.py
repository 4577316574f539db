"""Staff see every license's sync health and quarantined records, and can start a sync."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.roles import SUPPORT
from tests.accounts.factories import UserFactory
from tests.conftest import staff_force_login
from tests.ledger import assert_ledger_matches_upstream
from tests.processes import profile_for
from usage.models import QuarantinedRecord, SyncState
from usage.services.sync import usage_sync_license
from usage.simulator import Faults
from usage.upstream import upstream_summary

CHANGELIST = "admin:usage_syncstate_changelist"


@pytest.fixture
def superuser_client(client, db):
    user = UserFactory(email="root@portal.example", is_staff=True, is_superuser=True)
    staff_force_login(client, user)
    client.user = user
    return client


@pytest.fixture
def support_client(client, db):
    user = UserFactory(email="sue@portal.example", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT))
    staff_force_login(client, user)
    return client


def test_sync_now_syncs_the_license_and_is_audited(start_simulator, superuser_client, license_a):
    start_simulator(profiles=[profile_for(license_a, days=1)])
    SyncState.objects.create(license=license_a)
    response = superuser_client.post(
        reverse(CHANGELIST),
        {"action": "sync_now", "_selected_action": [license_a.pk]},
        follow=True,
    )
    assert response.status_code == 200
    summary = upstream_summary(license_key=license_a.key)
    assert_ledger_matches_upstream(license_a, summary)
    shown = [str(m) for m in response.context["messages"]]
    assert shown == [
        f"Alpha Corp: up to date (1 page, {summary['records']} charged, 0 duplicates skipped, 0 quarantined)."
    ]
    audit = AuditEvent.objects.for_license(license_a).get(action="usage.sync_now")
    assert audit.actor == superuser_client.user


def test_support_sees_sync_health_and_can_start_a_sync_which_is_audited(
    start_simulator, support_client, license_a
):
    """Issue 16: Support (and Billing) may start a sync; before, only superusers could."""
    start_simulator(profiles=[profile_for(license_a, days=1)], faults=Faults(error_share=1.0))
    usage_sync_license(license=license_a, trigger="test")
    response = support_client.get(reverse(CHANGELIST))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Alpha Corp" in html and "answered 5" in html  # the failing run's error
    assert 'value="sync_now"' in html
    support_client.post(
        reverse(CHANGELIST), {"action": "sync_now", "_selected_action": [license_a.pk]}
    )
    audit = AuditEvent.objects.get(action="usage.sync_now")
    assert audit.actor is not None and audit.actor.email == "sue@portal.example"
    assert audit.license == license_a
    detail = support_client.get(reverse("admin:usage_syncstate_change", args=[license_a.pk]))
    assert detail.status_code == 200 and 'name="cursor"' not in detail.content.decode()


def test_sync_now_on_the_license_page_for_support(start_simulator, support_client, license_a):
    start_simulator(profiles=[profile_for(license_a, days=1)])
    page = support_client.get(reverse("admin:accounts_license_change", args=[license_a.pk]))
    assert 'value="Sync now"' in page.content.decode()
    response = support_client.post(
        reverse("admin:accounts_license_sync_now", args=[license_a.pk]), follow=True
    )
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) == 1 and shown[0].startswith("Alpha Corp: up to date (1 page, ")
    summary = upstream_summary(license_key=license_a.key)
    assert_ledger_matches_upstream(license_a, summary)
    audit = AuditEvent.objects.for_license(license_a).get(action="usage.sync_now")
    assert audit.actor.email == "sue@portal.example"


def test_a_customer_cannot_start_a_sync_from_the_admin(client_a, license_a):
    response = client_a.post(reverse("admin:accounts_license_sync_now", args=[license_a.pk]))
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="usage.sync_now").exists()


def test_quarantined_records_are_listed_by_reason_with_the_raw_record(
    start_simulator, superuser_client, license_a
):
    start_simulator(profiles=[profile_for(license_a, days=1)], faults=Faults(malformed_share=0.2))
    usage_sync_license(license=license_a, trigger="test")
    changelist = reverse("admin:usage_quarantinedrecord_changelist")
    response = superuser_client.get(
        changelist, {"reason_code": "unknown_license", "license__id__exact": license_a.pk}
    )
    rows = response.context["cl"].result_list
    assert (
        len(rows)
        == QuarantinedRecord.objects.for_license(license_a)
        .filter(reason_code="unknown_license")
        .count()
        > 0
    )
    record = rows[0]
    detail = superuser_client.get(reverse("admin:usage_quarantinedrecord_change", args=[record.pk]))
    html = detail.content.decode()
    assert "UNKNOWN-" in html and record.record_id in html
    assert (
        superuser_client.post(
            reverse("admin:usage_quarantinedrecord_delete", args=[record.pk])
        ).status_code
        == 403
    )
