"""Usage pushed by the provider (`POST /ingest/v1/usage`): charged once across the push and
the pull, refused records named and quarantined, bad requests refused clearly."""

import io
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import AuditEvent, License
from billing.ledger.selectors import balance_get
from tests.accounts.factories import LicenseFactory
from tests.ledger import assert_ledger_matches_upstream, ledger_usage
from tests.processes import NOW, profile_for
from tests.provider.conftest import bearer
from usage.models import QuarantinedRecord, SyncState
from usage.services.sync import usage_sync_license
from usage.simulator.server import RunningSimulator
from usage.upstream import UpstreamClient, upstream_summary

pytestmark = pytest.mark.django_db
URL = "/ingest/v1/usage"


def push(client: Client, token: str, records: Any, **extra: Any) -> Any:
    return client.post(
        URL,
        data=json.dumps({"records": records}),
        content_type="application/json",
        **bearer(token),  # type: ignore[arg-type]
        **extra,
    )


def upstream_records(license: License, limit: int) -> list[dict[str, Any]]:
    """The first records the upstream serves the license: what its provider pushes."""
    with UpstreamClient() as upstream:
        return upstream.usage_page(license_key=license.key, after="", limit=limit).records


def a_record(license: License, record_id: str = "push-1", **fields: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "license": license.key,
        "occurred_at": (NOW - timedelta(minutes=5)).isoformat(),
        "request_id": f"req-{record_id}",
        "endpoint": "/v1/chat/completions",
        "status": "success",
        "input_tokens": 1000,
        "cached_tokens": 0,
        "completion_tokens": 500,
        "images": 0,
        **fields,
    }


def assert_reconciles(*months: str) -> None:
    for month in months:
        out = io.StringIO()
        call_command("reconcile_ledger", month=month, stdout=out)
        assert "reconcile with the ledger" in out.getvalue()


def test_a_batch_pushed_twice_and_then_pulled_is_charged_once(
    client: Client,
    service_token: str,
    license_a: License,
    start_simulator: Callable[..., RunningSimulator],
):
    start_simulator(profiles=[profile_for(license_a, days=2)])
    records = upstream_records(license_a, 300)
    assert len(records) == 300

    first = push(client, service_token, records)
    assert first.status_code == 200, first.content
    assert first.json()["accepted"] == 300
    assert first.json()["already_known"] == 0 and first.json()["rejected"] == []
    assert ledger_usage(license_a)["records"] == 300
    balance_after_push = balance_get(license_a).balance

    again = push(client, service_token, records)
    assert again.json()["accepted"] == 0 and again.json()["already_known"] == 300
    assert balance_get(license_a).balance == balance_after_push

    pulled = usage_sync_license(license=license_a, trigger="test")
    summary = upstream_summary(license_key=license_a.key)
    assert pulled.complete and summary["records"] > 300
    assert pulled.records_charged == summary["records"] - 300
    assert pulled.records_duplicate >= 300
    assert_ledger_matches_upstream(license_a, summary)
    assert_reconciles(*sorted({f"{NOW - timedelta(days=d):%Y-%m}" for d in range(3)}))


def test_records_are_grouped_by_license_and_the_refused_ones_named_and_quarantined(
    client: Client, service_token: str, license_a: License, license_b: License
):
    records = [
        a_record(license_a, "a-1"),
        a_record(license_b, "b-1"),
        a_record(license_a, "a-2", input_tokens=-5),
        a_record(license_a, "a-1"),  # repeated in the batch: charged once
        {"id": "x-1", "license": "NOBODY-0000", "occurred_at": "2026-11-20T11:00:00Z"},
        a_record(license_b, "b-2", occurred_at="yesterday"),
        a_record(LicenseFactory.build(key="NOBODY-0000"), "x-2"),
        "not a record",
    ]
    response = push(client, service_token, records)
    assert response.status_code == 200
    answer = response.json()
    assert answer["accepted"] == 2 and answer["already_known"] == 1
    rejected = {r["index"]: (r["id"], r["license"], r["code"]) for r in answer["rejected"]}
    assert rejected == {
        2: ("a-2", license_a.key, "bad_quantity"),
        4: ("x-1", "NOBODY-0000", "missing_field"),
        5: ("b-2", license_b.key, "bad_date"),
        6: ("x-2", "NOBODY-0000", "unknown_license"),
        7: (None, None, "not_an_object"),
    }
    assert all(r["reason"] for r in answer["rejected"])
    assert ledger_usage(license_a)["records"] == 1 and ledger_usage(license_b)["records"] == 1
    kept = QuarantinedRecord.objects.order_by("record_id")
    assert [(q.license_id, q.record_id, q.cursor) for q in kept] == [
        (None, "", "push"),
        (license_a.pk, "a-2", "push"),
        (license_b.pk, "b-2", "push"),
        (None, "x-1", "push"),
        (None, "x-2", "push"),
    ]
    # The same refused records pushed again are refused again and kept once.
    push(client, service_token, records)
    assert QuarantinedRecord.objects.count() == 5
    assert SyncState.objects.for_license(license_a).get().pushed_at is not None


def test_a_closed_licenses_usage_is_still_recorded(
    client: Client, service_token: str, license_a: License
):
    license_a.status = License.Status.CLOSED
    license_a.save()
    answer = push(client, service_token, [a_record(license_a)]).json()
    assert answer["accepted"] == 1 and answer["rejected"] == []
    assert balance_get(license_a).balance < 0


def test_bad_requests_are_refused_clearly(client: Client, service_token: str, license_a: License):
    def code(response: Any) -> tuple[int, str]:
        return response.status_code, response.json()["error"]["code"]

    auth: Any = bearer(service_token)
    assert code(client.post(URL, data="{", content_type="application/json", **auth)) == (
        400,
        "bad_json",
    )
    assert code(client.post(URL, data="records=1", content_type="text/plain", **auth)) == (
        415,
        "unsupported_media_type",
    )
    assert code(
        client.post(URL, data=json.dumps([1]), content_type="application/json", **auth)
    ) == (400, "bad_request")
    too_many = [a_record(license_a, f"r-{n}") for n in range(1001)]
    assert code(push(client, service_token, too_many)) == (413, "too_many_records")
    assert client.get(URL, **auth).status_code == 405
    assert ledger_usage(license_a)["records"] == 0


def test_only_a_service_token_pushes(
    client: Client, service_token: str, license_a: License, capsys: pytest.CaptureFixture[str]
):
    capsys.readouterr()
    call_command("api_key_create", license=license_a.key, name="customer program")
    api_key = capsys.readouterr().out.strip()
    for header in (
        {},
        bearer(api_key),
        bearer(service_token + "x"),
        {"HTTP_AUTHORIZATION": "Basic x"},
    ):
        response = client.post(
            URL,
            data=json.dumps({"records": [a_record(license_a)]}),
            content_type="application/json",
            **header,  # type: ignore[arg-type]
        )
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="provider"'
    call_command("service_token_revoke", prefix=service_token[:12])
    assert push(client, service_token, [a_record(license_a)]).status_code == 401
    assert ledger_usage(license_a)["records"] == 0
    assert AuditEvent.objects.filter(action="service_token.revoke").exists()
