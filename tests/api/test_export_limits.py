"""One history-export limit per license whatever the door (issue 29): the API's
history.csv and the dashboard's Download History count against the same allowance, per key
or login and per license; over it, the API answers a JSON 429 and the web a 429 page, both
with Retry-After."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from tests.ledger import buy

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def csv_url(license):
    return reverse("dashboard:history_csv", kwargs={"license_id": license.public_id})


def test_the_api_and_the_dashboard_share_one_history_limit_per_license(
    client, client_a, license_a, make_key, settings
):
    """Nine full CSVs went out through one key in 16 s while the dashboard allowed ten per
    ten minutes, and an owner can make more keys: now each key and each login has its own
    allowance, and the license one for all of them together."""
    settings.HISTORY_CSV_RATE_LIMIT = 2
    settings.HISTORY_CSV_LICENSE_RATE_LIMIT = 5
    buy(license_a, "10.00", "pay_a")
    api_csv = f"/api/v1/licenses/{license_a.public_id}/history.csv"
    keys = [make_key(license_a, name=f"key {i}") for i in range(3)]
    with time_machine.travel(START, tick=False):
        first, second, third = ({"HTTP_AUTHORIZATION": f"Bearer {k}"} for k in keys)
        assert [client.get(api_csv, **first).status_code for _ in range(3)] == [200, 200, 429]
        refused = client.get(api_csv, **first)
        assert refused["Retry-After"] == "600"
        assert refused.json()["error"] == {
            "code": "export_limited",
            "message": "History downloads are limited to 2 every 10 minutes — "
            "you can download it again in 10 minutes.",
        }
        # Another key has its own allowance, up to the license's five...
        assert [client.get(api_csv, **second).status_code for _ in range(2)] == [200, 200]
        assert client_a.get(csv_url(license_a)).status_code == 200  # the fifth, from the web
        # ...and then neither a new key nor the dashboard gets a sixth.
        assert client.get(api_csv, **third).status_code == 429
        page = client_a.get(csv_url(license_a))
        assert page.status_code == 429 and page["Retry-After"] == "600"
        assert (
            "History downloads of this license are limited to 5 every 10 minutes, from the "
            "dashboard and the API together" in page.content.decode()
        )


def test_the_license_wide_default_allows_more_than_one_login_but_not_unbounded(settings):
    assert settings.HISTORY_CSV_LICENSE_RATE_LIMIT == 30
    assert settings.HISTORY_CSV_LICENSE_RATE_LIMIT > settings.HISTORY_CSV_RATE_LIMIT
