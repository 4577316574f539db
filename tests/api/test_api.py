"""The customer API: a program reads what the dashboard shows, with a key that is its
license's only, refused once revoked or expired, limited per key."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from accounts.models import AuditEvent
from api.models import ApiKey
from api.services import api_key_create, api_key_revoke
from billing.charges.services import UsageRecord, usage_record_batch
from dashboard.selectors.overview import dashboard_get
from tests.api.conftest import bearer
from tests.ledger import buy, charge, record, spend, spend_images

pytestmark = pytest.mark.django_db


def _url(license, tail=""):
    return f"/api/v1/licenses/{license.public_id}{tail}"


def test_key_from_the_command_reads_the_dashboards_balance_to_the_micro_dollar(
    client, alice_license, bob_license, make_key
):
    buy(alice_license, "25.000000")
    usage_record_batch(
        license=alice_license,
        records=[
            UsageRecord(
                id=f"call-{i}",
                occurred_at=timezone.now() - timedelta(hours=i),
                input_tokens=1_234_567 + i,
                cached_tokens=333,
                completion_tokens=98_765,
            )
            for i in range(5)
        ],
    )
    spend_images(alice_license, 7)
    raw = make_key(alice_license)
    assert raw.startswith("tcp_")

    answer = client.get(_url(alice_license, "/balance"), **bearer(raw))
    assert answer.status_code == 200, answer.content
    body = answer.json()
    dashboard = dashboard_get(license=alice_license)
    assert dashboard.balance != dashboard.balance.quantize(Decimal("0.01"))  # micro-dollars
    assert Decimal(body["balance"]) == dashboard.balance
    assert body["balance"] == f"{dashboard.balance:f}"  # 6 places, as a string
    assert body["total_spent"] == f"{dashboard.total_spent:f}"
    assert body["total_purchased"] == "25.000000"
    assert body["api_calls"] == dashboard.api_calls
    assert body["images"] == 7
    assert body["transactions"] == dashboard.total_transactions

    # The same key on bob's license: 404, as if it did not exist — for every endpoint.
    for tail in ("", "/balance", "/usage", "/transactions", "/statements/2025-06", "/history.csv"):
        refused = client.get(_url(bob_license, tail), **bearer(raw))
        assert refused.status_code == 404, tail
        assert refused.json()["error"]["code"] == "not_found"
        assert "Globex" not in refused.content.decode()


def test_revoked_and_expired_keys_get_401_and_both_changes_are_audited(
    client, alice_license, alice
):
    key, raw = api_key_create(acting_user=alice, license=alice_license, name="ci")
    assert client.get(_url(alice_license), **bearer(raw)).status_code == 200
    api_key_revoke(acting_user=alice, key=key)
    answer = client.get(_url(alice_license), **bearer(raw))
    assert answer.status_code == 401
    assert answer.json() == {
        "error": {"code": "key_revoked", "message": f"The API key {key.display} was revoked."}
    }
    assert raw not in answer.content.decode()
    actions = list(
        AuditEvent.objects.for_license(alice_license)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions[-2:] == ["api_key.create", "api_key.revoke"]

    soon = timezone.now() + timedelta(hours=1)
    _, expiring = api_key_create(
        acting_user=alice, license=alice_license, name="tmp", expires_at=soon
    )
    assert client.get(_url(alice_license), **bearer(expiring)).status_code == 200
    with time_machine.travel(soon + timedelta(seconds=1)):
        assert (
            client.get(_url(alice_license), **bearer(expiring)).json()["error"]["code"]
            == "key_expired"
        )

    for header in ({}, bearer("tcp_00000000_nope"), bearer(raw[:-1] + "x")):
        answer = client.get(_url(alice_license), **header)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthenticated"


def test_only_the_hash_is_stored_and_last_use_is_noted(client, alice_license, make_key):
    raw = make_key(alice_license)
    key = ApiKey.objects.get()
    assert raw not in (key.secret_hash, key.prefix) and key.prefix in raw
    assert key.last_used_at is None
    client.get(_url(alice_license), **bearer(raw))
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_rate_limited_per_key_with_retry_after(client, alice_license, make_key, settings):
    settings.API_RATE_LIMIT = 3
    raw, other = make_key(alice_license), make_key(alice_license, "other")
    codes = [client.get(_url(alice_license), **bearer(raw)).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = client.get(_url(alice_license), **bearer(raw))
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["error"]["code"] == "rate_limited"
    assert client.get(_url(alice_license), **bearer(other)).status_code == 200


def test_transactions_page_through_the_history_with_a_cursor(client, alice_license, make_key):
    buy(alice_license, "10.00")
    at = timezone.now() - timedelta(days=3)
    for i in range(7):
        spend(alice_license, "0.10", at=at + timedelta(minutes=i))
    raw = make_key(alice_license)
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(_url(alice_license, "/transactions"), params, **bearer(raw)).json()
        seen += page["data"]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert len(seen) == 8 and len({t["id"] for t in seen}) == 8
    times = [t["occurred_at"] for t in seen]
    assert times == sorted(times, reverse=True)
    assert seen[-1]["amount"] == "-0.100000" and seen[0]["kind"] == "purchase"

    one = client.get(_url(alice_license, f"/transactions/{seen[0]['id']}"), **bearer(raw))
    assert one.json() == seen[0]
    for garbage in ("garbage", "9" * 40 + ".1", "1." + "9" * 30, "-5.-5"):
        bad = client.get(_url(alice_license, "/transactions"), {"cursor": garbage}, **bearer(raw))
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


def _page_ids(client, license, query):
    """The entry ids All transactions lists for `query` (its first page)."""
    page = client.get(f"/l/{license.public_id}/transactions/", query)
    assert page.status_code == 200
    return [t.id for t in page.context["items"]]


def test_transactions_filter_and_search_as_all_transactions(client, alice_license, alice, make_key):
    """Each filter of the All transactions page gives the API the same lines: one per call
    (its service charges together), the same search by request, record or entry id."""
    now = timezone.now()
    buy(alice_license, "20.00", at=now - timedelta(days=5))
    charge(
        alice_license,
        record(now - timedelta(days=4), input_tokens=1000, completion_tokens=500,
               endpoint="/v1/chat/completions", record_id="rec-chat", request_id="req-chat"),
        record(now - timedelta(days=2), images=20, endpoint="/v1/images",
               record_id="rec-img", request_id="req-img"),
        record(now - timedelta(days=1), input_tokens=10, endpoint="/v1/chat/completions",
               status="error", record_id="rec-err", request_id="req-err"),
    )  # fmt: skip
    raw = make_key(alice_license)
    client.force_login(alice)
    local_day = timezone.localtime(now - timedelta(days=2), alice_license.tzinfo).date()
    cases = [
        {},
        {"type": "usage"},
        {"type": "purchase"},
        {"service": "ai_images"},
        {"service": "ai_data_completion"},
        {"endpoint": "/v1/chat/completions"},
        {"status": "error"},
        {"from": f"{local_day}", "to": f"{local_day}"},
        {"q": "req-chat"},
        {"q": "rec-img"},
    ]
    for query in cases:
        api = client.get(_url(alice_license, "/transactions"), query, **bearer(raw))
        assert api.status_code == 200, query
        assert [t["id"] for t in api.json()["data"]] == _page_ids(client, alice_license, query), (
            query
        )

    chat = client.get(_url(alice_license, "/transactions"), {"q": "req-chat"}, **bearer(raw))
    (call,) = chat.json()["data"]
    assert call["services"] == ["ai_data", "ai_data_completion"] and len(call["entries"]) == 2
    assert call["request_id"] == "req-chat" and call["record_id"] == "rec-chat"
    assert call["amount"] == f"{sum(Decimal(e['amount']) for e in call['entries']):f}"
    by_entry = client.get(
        _url(alice_license, "/transactions"), {"q": str(call["id"])}, **bearer(raw)
    )
    assert by_entry.json()["data"] == [call]

    wrong = client.get(_url(alice_license, "/transactions"), {"type": "gift"}, **bearer(raw))
    assert wrong.status_code == 400 and "type" in wrong.json()["error"]["message"]


def test_another_licenses_transaction_is_404(client, alice_license, bob_license, make_key):
    theirs = buy(bob_license, "5.00").entry
    raw = make_key(alice_license)
    answer = client.get(_url(alice_license, f"/transactions/{theirs.pk}"), **bearer(raw))
    assert answer.status_code == 404


def test_usage_by_day_and_month_in_the_licenses_days(client, alice_license, make_key):
    buy(alice_license, "10.00")
    now = timezone.now()
    usage_record_batch(  # 2,083,334 input tokens at $0.60 per 1M: $1.250000 (half-up)
        license=alice_license,
        records=[UsageRecord(id="t1", occurred_at=now - timedelta(days=2), input_tokens=2_083_334)],
    )
    spend_images(alice_license, 10, at=now - timedelta(days=2))
    raw = make_key(alice_license)
    day = client.get(_url(alice_license, "/usage"), **bearer(raw)).json()
    assert day["granularity"] == "day" and day["timezone"] == "America/New_York"
    assert Decimal(day["total"]) == Decimal("1.251000")
    assert {b["service"] for b in day["data"]} == {"ai_data", "ai_images"}
    month = client.get(
        _url(alice_license, "/usage"), {"granularity": "month"}, **bearer(raw)
    ).json()
    assert month["total"] == day["total"]
    longer = client.get(
        _url(alice_license, "/usage"), {"from": "2020-01-01", "to": "2022-01-01"}, **bearer(raw)
    )  # more than a year of days: the first page (tests/api/test_usage.py)
    assert longer.status_code == 200 and longer.json()["next_from"] == "2021-01-01"


def test_history_csv_streams_the_ledger(client, alice_license, make_key):
    buy(alice_license, "10.00")
    raw = make_key(alice_license)
    answer = client.get(_url(alice_license, "/history.csv"), **bearer(raw))
    assert answer.status_code == 200
    text = b"".join(answer.streaming_content).decode()
    assert text.splitlines()[0].startswith("date_time,local_time,type,service,amount,balance")
    assert ",purchase,,10.000000,10.000000," in text  # the movement's name


def test_openapi_document_is_3_1_and_the_reference_page_lists_every_endpoint(client):
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    page = client.get("/api/v1/reference/").content.decode()
    for path in document["paths"]:
        assert path in page


def test_a_transactions_page_costs_the_same_queries_whatever_the_history(
    client, alice_license, make_key
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    raw = make_key(alice_license)
    buy(alice_license, "50.00")
    at = timezone.now() - timedelta(days=2)

    def queries(params):
        with CaptureQueriesContext(connection) as captured:
            answer = client.get(_url(alice_license, "/transactions"), params, **bearer(raw))
        assert answer.status_code == 200
        return len(captured), answer.json()

    queries({})  # the key's first use of the minute notes it (one UPDATE), not measured
    for i in range(12):
        spend(alice_license, "0.10", at=at + timedelta(minutes=i))
    few, first = queries({"limit": 5})
    for i in range(12, 150):
        spend(alice_license, "0.10", at=at + timedelta(minutes=i))
    many, _ = queries({"limit": 5})
    later, _ = queries({"limit": 5, "cursor": first["next_cursor"]})
    assert few == many == later
