"""Fresh, and saying so: a pushed record is in the balance at once, and every page and API
answer that shows a balance says as of when (and how current its usage is)."""

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import License, User
from tests.ledger import buy
from tests.provider.conftest import bearer
from usage.selectors import sync_state_get

pytestmark = pytest.mark.django_db


def push_one(client: Client, token: str, license: License) -> Any:
    record = {
        "id": "call-1",
        "license": license.key,
        "occurred_at": (timezone.now() - timedelta(seconds=2)).isoformat(),
        "status": "success",
        "input_tokens": 0,
        "cached_tokens": 0,
        "completion_tokens": 0,
        "images": 100,
    }
    return client.post(
        "/ingest/v1/usage",
        data=json.dumps({"records": [record]}),
        content_type="application/json",
        **bearer(token),  # type: ignore[arg-type]
    ).json()


def test_a_push_makes_the_usage_current_everywhere_a_balance_shows(
    client: Client,
    service_token: str,
    license_a: License,
    member_a: User,
    capsys: pytest.CaptureFixture[str],
):
    buy(license_a, "1")
    before = timezone.now()
    assert sync_state_get(license_a).known_current_at is None
    received = datetime.fromisoformat(push_one(client, service_token, license_a)["received_at"])
    usage_as_of = sync_state_get(license_a).known_current_at
    assert usage_as_of == received and usage_as_of >= before

    capsys.readouterr()
    call_command("api_key_create", license=license_a.key, name="program")
    key = capsys.readouterr().out.strip()
    answer = client.get(
        f"/api/v1/licenses/{license_a.public_id}/balance",
        **bearer(key),  # type: ignore[arg-type]
    ).json()
    assert answer["balance"] == "0.990000"
    # The API writes times to the millisecond.
    assert abs(datetime.fromisoformat(answer["usage_as_of"]) - received) < timedelta(milliseconds=1)
    assert datetime.fromisoformat(answer["as_of"]) > received - timedelta(milliseconds=1)

    client.force_login(member_a)
    page = client.get(f"/l/{license_a.public_id}/").content.decode()
    assert 'data-testid="balance-as-of"' in page
    assert 'data-testid="last-updated">' in page and "Not synced yet" not in page
    assert 'data-testid="balances-as-of"' in client.get("/licenses/").content.decode()
    limits = client.get(f"/l/{license_a.public_id}/spend-limits/").content.decode()
    assert 'data-testid="limits-as-of"' in limits
