"""No message anywhere prints a full key: not the license key (unless an owner asked to
reveal it) and never an API key's secret after the page that made it."""

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from api.services import api_key_create, api_key_revoke
from tests.ledger import buy, spend

pytestmark = pytest.mark.django_db

PAGES = [
    "overview", "reports", "help", "purchase", "test_api", "api_keys", "webhooks", "alert_settings",
]  # fmt: skip


def test_pages_answers_and_emails_never_carry_a_full_key(
    client, alice_license, alice, django_capture_on_commit_callbacks, celery_eager, settings
):
    settings.UPSTREAM_URL = "http://127.0.0.1:9"  # nothing answers: the error paths
    settings.PORTAL_API_BASE_URL = "http://127.0.0.1:9/api/v1"
    client.force_login(alice)
    key, raw = api_key_create(acting_user=alice, license=alice_license, name="ci")
    with django_capture_on_commit_callbacks(execute=True):
        buy(alice_license, "2.00")
    with django_capture_on_commit_callbacks(execute=True):
        spend(alice_license, "1.50")  # the low-balance email
    assert mail.outbox

    shown = []
    for name in PAGES:
        url = reverse(f"dashboard:{name}", kwargs={"license_id": alice_license.public_id})
        response = client.get(url)
        assert response.status_code == 200, name
        shown.append(response.content.decode())
    test_api = reverse("dashboard:test_api", kwargs={"license_id": alice_license.public_id})
    shown.append(client.post(test_api, {"action": "check"}).content.decode())
    shown.append(client.post(test_api, {"action": "api", "api_key": raw}).content.decode())
    api_key_revoke(acting_user=alice, key=key)
    shown.append(
        client.get(
            f"/api/v1/licenses/{alice_license.public_id}", HTTP_AUTHORIZATION=f"Bearer {raw}"
        ).content.decode()
    )
    for m in mail.outbox:
        parts = m.alternatives if isinstance(m, EmailMultiAlternatives) else []
        shown.append(f"{m.subject}{m.body}" + "".join(str(content) for content, _ in parts))

    for text in shown:
        assert alice_license.key not in text
        assert raw not in text
    assert any(alice_license.masked_key in text for text in shown)
    assert any(key.display in text for text in shown)


def test_only_an_owner_reveals_the_license_key_and_it_is_audited(client, alice_license, alice):
    from accounts.models import AuditEvent, Membership
    from tests.accounts.factories import MembershipFactory, UserFactory

    url = reverse("dashboard:test_api", kwargs={"license_id": alice_license.public_id})
    member = MembershipFactory(
        license=alice_license, user=UserFactory(email="m@acme.example"), role=Membership.Role.MEMBER
    ).user
    client.force_login(member)
    refused = client.post(url, {"action": "reveal"})
    assert refused.status_code == 403 and alice_license.key not in refused.content.decode()
    client.force_login(alice)
    html = client.post(url, {"action": "reveal"}).content.decode()
    assert f"Authorization: Bearer {alice_license.key}" in html
    assert AuditEvent.objects.filter(action="license.key_reveal", actor=alice).count() == 1
