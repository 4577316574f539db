"""The API's usage endpoint reads through the explorer's selector (billing.selectors.
usage_by_period): by service or by endpoint, the same figures as the usage explorer shows,
over any range: one the explorer refuses as too long comes a page at a time."""

import itertools
from datetime import UTC, date, datetime, timedelta
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


def _pages(client, license, raw, params):
    """Every page of a usage range, following next_from."""
    pages, asked = [], dict(params)
    while True:
        answer = client.get(_url(license), asked, **bearer(raw))
        assert answer.status_code == 200, answer.content
        pages.append(answer.json())
        if not pages[-1]["has_more"]:
            return pages
        asked["from"] = pages[-1]["next_from"]


def test_a_long_range_comes_a_page_at_a_time_and_the_pages_add_up(client, alice_license, make_key):
    """A range the explorer refuses as too long (366 days by day, 1,098 by month) comes in
    pages that cover it exactly once: the same buckets as the short ranges, no day or
    month in two pages, the totals adding up to the usage of the whole range."""
    buy(alice_license, "50")
    days = [datetime(2021, 1, 1, 15, tzinfo=UTC) + timedelta(days=97 * i) for i in range(18)]
    charge(alice_license, *(record(at, images=10 + i) for i, at in enumerate(days)))
    raw = make_key(alice_license)
    whole = {"from": "2021-01-01", "to": "2025-12-31"}
    expected = sum(Decimal("0.0001") * (10 + i) for i in range(18))

    by_day = _pages(client, alice_license, raw, whole)
    assert len(by_day) == 5
    for page, following in itertools.pairwise(by_day):
        last = date.fromisoformat(page["to"])
        assert (last - date.fromisoformat(page["from"])).days + 1 == 366
        assert following["from"] == page["next_from"] == f"{last + timedelta(days=1)}"
    assert by_day[-1]["to"] == "2025-12-31" and by_day[-1]["next_from"] is None
    periods = [b["period"] for page in by_day for b in page["data"]]
    assert len(periods) == len(set(periods)) == 18
    assert sum(Decimal(page["total"]) for page in by_day) == expected

    by_month = _pages(client, alice_license, raw, {**whole, "granularity": "month"})
    assert [(p["from"], p["to"]) for p in by_month] == [
        ("2021-01-01", "2023-12-31"),  # 36 whole months: 1,095 days
        ("2024-01-01", "2025-12-31"),
    ]
    months = [b["period"] for page in by_month for b in page["data"]]
    assert len(months) == len(set(months))
    assert sum(Decimal(page["total"]) for page in by_month) == expected

    mid_month = _pages(
        client, alice_license, raw, {**whole, "from": "2021-01-15", "granularity": "month"}
    )
    assert mid_month[0]["to"] == "2023-12-31" and mid_month[1]["from"] == "2024-01-01"


def test_a_backwards_range_is_empty_and_other_groupings_are_refused(
    client, alice_license, calls, make_key
):
    raw = make_key(alice_license)
    backwards = client.get(
        _url(alice_license), {"from": "2025-06-30", "to": "2025-06-01"}, **bearer(raw)
    )
    assert backwards.status_code == 200
    assert backwards.json()["data"] == [] and backwards.json()["total"] == "0.000000"
    assert backwards.json()["has_more"] is False
    model = client.get(_url(alice_license), {"group_by": "model"}, **bearer(raw))
    assert model.status_code == 400 and model.json()["error"]["field"] == "group_by"


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
