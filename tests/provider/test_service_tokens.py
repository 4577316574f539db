"""Service tokens: the provider's secrets, shown once, stored hashed, revocable, audited,
listed read-only for staff, and never interchangeable with a customer's API key."""

import hashlib
from collections.abc import Callable

import pytest
from django.contrib.admin import helpers
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, License, User
from provider.models import ServiceToken
from provider.selectors import service_token_for_secret
from tests.provider.conftest import bearer

pytestmark = pytest.mark.django_db


def test_a_token_is_printed_once_and_only_its_hash_is_stored(make_token: Callable[..., str]):
    raw = make_token("gateway eu-1")
    token = ServiceToken.objects.get()
    assert raw.startswith("tcs_") and raw.startswith(token.prefix + "_")
    assert token.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ServiceToken.objects.values().get())
    assert service_token_for_secret(raw) == token
    assert service_token_for_secret(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    event = AuditEvent.objects.get(action="service_token.create")
    assert event.license is None and event.changes == {"name": "gateway eu-1"}
    assert raw not in str(event.changes) + event.target


def test_a_token_needs_a_plain_name(db: None):
    with pytest.raises(CommandError, match="name"):
        call_command("service_token_create", name="  ")
    with pytest.raises(CommandError, match=r"U\+200B"):
        call_command("service_token_create", name="gate\u200bway")
    assert not ServiceToken.objects.exists()


def test_a_revoked_token_is_refused_from_then_on(make_token: Callable[..., str]):
    raw = make_token()
    token = ServiceToken.objects.get()
    call_command("service_token_revoke", prefix=token.prefix, reason="leaked in a log")
    assert service_token_for_secret(raw) is None
    event = AuditEvent.objects.get(action="service_token.revoke")
    assert event.reason == "leaked in a log" and event.target == f"service token {token.display}"
    call_command("service_token_revoke", prefix=token.prefix)  # again: nothing more
    assert AuditEvent.objects.filter(action="service_token.revoke").count() == 1
    with pytest.raises(CommandError, match="No service token"):
        call_command("service_token_revoke", prefix="tcs_00000000")


def test_the_customer_api_refuses_a_service_token(
    client: Client, make_token: Callable[..., str], license_a: License
):
    raw = make_token()
    response = client.get("/api/v1/licenses", **bearer(raw))  # type: ignore[arg-type]
    assert response.status_code == 401


def test_staff_list_tokens_read_only_and_a_superuser_revokes_them(
    admin_client: Client, client: Client, make_token: Callable[..., str], admin_user: User
):
    raw = make_token("gateway")
    token = ServiceToken.objects.get()
    url = reverse("admin:provider_servicetoken_changelist")
    page = admin_client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert token.display in text and token.secret_hash not in text and raw not in text
    assert admin_client.get(reverse("admin:provider_servicetoken_add")).status_code == 403
    response = admin_client.post(
        url, {"action": "revoke", "index": "0", helpers.ACTION_CHECKBOX_NAME: [str(token.pk)]}
    )
    assert response.status_code == 302
    assert service_token_for_secret(raw) is None
    event = AuditEvent.objects.get(action="service_token.revoke")
    assert event.actor == admin_user
