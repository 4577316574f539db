"""The API's usage endpoint reads through the explorer's selector (billing.selectors.
usage_by_period): by service or by endpoint, the same figures as the usage explorer shows,
the same ranges refused with the same words."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import LicenseBalance
from tests.api.conftest import bearer
from tests.ledger import buy, charge, record

pytestmark = pytest.mark.django_db


def _url(license):
    return f"/api/v1/licenses/{license.public_id}/usage"


@pytest.fixture
def calls(alice_license, bob_license):
    buy(alice_license, "10")
    buy(bob_license, "10")
    # 03:30 UTC on Jun 11 is still Jun 10 in New York.
    charge(
        alice_license,
        record(datetime(2025, 6, 10, 15, tzinfo=UTC), input_tokens=10**6, endpoint="/v1/chat"),
        record(datetime(2025, 6, 11, 3, 30, tzinfo=UTC), images=40, endpoint="/v1/images"),
        record(datetime(2025, 6, 12, 15, tzinfo=UTC), completion_tokens=10**6, endpoint="/v1/chat"),
        record(datetime(2025, 6, 12, 16, tzinfo=UTC), images=1, endpoint=""),
    )
    charge(
        bob_license, record(datetime(2025, 6, 10, 15, tzinfo=UTC), images=900, endpoint="/v1/bob")
    )


def test_usage_by_endpoint_per_local_day_equals_the_explorers(
    client, alice, alice_license, calls, make_key
):
    raw = make_key(alice_license)
    params = {"from": "2025-06-01", "to": "2025-06-30", "group_by": "endpoint"}
    body = client.get(_url(alice_license), params, **bearer(raw)).json()
    assert body["group_by"] == "endpoint"
    assert [(b["period"], b["endpoint"], b["amount"], b["api_calls"]) for b in body["data"]] == [
        ("2025-06-10", "/v1/chat", "0.600000", 1),
        ("2025-06-10", "/v1/images", "0.004000", 1),
        ("2025-06-12", "", "0.000100", 1),
        ("2025-06-12", "/v1/chat", "1.000000", 1),
    ]
    assert all(b["service"] is None for b in body["data"])
    assert body["total"] == "1.604100"
    by_month = client.get(
        _url(alice_license), {**params, "granularity": "month"}, **bearer(raw)
    ).json()
    assert [(b["period"], b["endpoint"], b["amount"]) for b in by_month["data"]] == [
        ("2025-06-01", "", "0.000100"),
        ("2025-06-01", "/v1/chat", "1.600000"),
        ("2025-06-01", "/v1/images", "0.004000"),
    ]
    # The customer's explorer shows the same total for the same range.
    client.force_login(alice)
    page = client.get(
        reverse("dashboard:usage_explorer", kwargs={"license_id": alice_license.public_id}),
        params,
    )
    assert page.context["explorer"].total == Decimal(body["total"])


def test_usage_ranges_are_refused_as_the_explorer_refuses_them(
    client, alice_license, calls, make_key
):
    raw = make_key(alice_license)
    backwards = client.get(
        _url(alice_license), {"from": "2025-06-30", "to": "2025-06-01"}, **bearer(raw)
    )
    assert backwards.status_code == 400
    assert backwards.json()["error"]["message"] == "'to' must be on or after 'from'."
    too_long = client.get(
        _url(alice_license),
        {"from": "2024-01-01", "to": "2025-06-30", "group_by": "endpoint"},
        **bearer(raw),
    )
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "range_too_long"
    assert too_long.json()["error"]["message"].startswith("'from': a range by day spans")
    assert client.get(_url(alice_license), {"group_by": "model"}, **bearer(raw)).status_code == 400


def test_usage_by_endpoint_is_409_until_the_rollups_cover_the_history(
    client, alice_license, calls, make_key
):
    raw = make_key(alice_license)
    LicenseBalance.objects.for_license(alice_license).update(endpoint_rollups_ready=False)
    params = {"from": "2025-06-01", "to": "2025-06-30"}
    waiting = client.get(_url(alice_license), {**params, "group_by": "endpoint"}, **bearer(raw))
    assert waiting.status_code == 409 and waiting.json()["error"]["code"] == "not_ready"
    by_service = client.get(_url(alice_license), params, **bearer(raw))
    assert by_service.status_code == 200 and by_service.json()["total"] == "1.604100"
