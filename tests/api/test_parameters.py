"""Parameters are what the document says they are, and nothing else: a query parameter an
operation does not declare is refused, never ignored; days, months, cursors, page sizes
and ids carry their formats, patterns and bounds in the document and are held to them at
run time, so every request the document allows is answered and every other is refused
(issue 26; the findings of `schemathesis run --checks all`, docs/architecture.md)."""

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import License
from api.v1 import api
from api.v1.formats import CURSOR_PATTERN, DAY_PATTERN, MONTH_PATTERN, TEXT_PATTERN
from billing.charges.selectors import LOCAL_DATE_MAX, LOCAL_DATE_MIN
from billing.history.transactions import Cursor
from tests.api.conftest import bearer, document_paths
from tests.ledger import buy, spend

pytestmark = pytest.mark.django_db


def _url(license: License, tail: str = "") -> str:
    return f"/api/v1/licenses/{license.public_id}{tail}"


def _parameters(template: str) -> dict[str, dict[str, Any]]:
    operation = api.get_openapi_schema()["paths"][template]["get"]
    return {p["name"]: p for p in operation.get("parameters", [])}


def _refused(answer: Any, field: str) -> str:
    assert answer.status_code == 400, answer.content
    error = answer.json()["error"]
    assert error["field"] == field and error["message"].startswith(f"{field}: "), error
    code: str = error["code"]
    return code


# --- unknown query parameters ---------------------------------------------------------


def test_an_unknown_query_parameter_is_refused_on_every_operation_naming_it(
    client: Client, alice_license: License, make_key: Any
) -> None:
    entry = buy(alice_license, "5.00").entry
    raw = make_key(alice_license)
    for template, path in document_paths(alice_license, entry.pk).items():
        answer = client.get(path, {"pretty": "1"}, **bearer(raw))
        assert _refused(answer, "pretty") == "invalid_request", path
        declared = sorted(n for n, p in _parameters(template).items() if p["in"] == "query")
        assert answer.json()["error"]["message"].endswith(
            f"(its parameters: {', '.join(declared) or 'none'})."
        )


def test_a_misspelt_filter_is_refused_rather_than_answering_everything(
    client: Client, alice_license: License, make_key: Any
) -> None:
    buy(alice_license, "5.00")
    spend(alice_license, "0.10")
    raw = make_key(alice_license)
    url = _url(alice_license, "/transactions")
    assert len(client.get(url, **bearer(raw)).json()["data"]) == 2
    assert _refused(client.get(url, {"serivce": "ai_images"}, **bearer(raw)), "serivce")
    filtered = client.get(url, {"service": "ai_images"}, **bearer(raw))
    assert [t["kind"] for t in filtered.json()["data"]] == ["usage"]


def test_every_declared_parameter_is_accepted_together(
    client: Client, alice_license: License, make_key: Any
) -> None:
    raw = make_key(alice_license)
    everything = {
        "limit": "5",
        "cursor": "1.1",
        "from": "2025-01-01",
        "to": "2025-12-31",
        "type": "usage",
        "service": "ai_data",
        "endpoint": "/v1/chat/completions",
        "status": "success",
        "q": "",
    }
    assert set(everything) == set(_parameters("/api/v1/licenses/{license_id}/transactions")) - {
        "license_id"
    }
    assert (
        client.get(_url(alice_license, "/transactions"), everything, **bearer(raw)).status_code
        == 200
    )


def test_a_request_without_a_key_is_401_whatever_its_parameters(
    client: Client, alice_license: License
) -> None:
    answer = client.get(_url(alice_license, "/balance"), {"pretty": "1"})
    assert answer.status_code == 401


# --- formats and patterns -------------------------------------------------------------


def test_the_document_carries_every_format_pattern_enum_and_bound() -> None:
    transactions = _parameters("/api/v1/licenses/{license_id}/transactions")
    usage = _parameters("/api/v1/licenses/{license_id}/usage")
    history = _parameters("/api/v1/licenses/{license_id}/history.csv")
    month = _parameters("/api/v1/licenses/{license_id}/statements/{month}")["month"]
    detail = _parameters("/api/v1/licenses/{license_id}/transactions/{transaction_id}")
    assert month["schema"]["pattern"] == MONTH_PATTERN
    for day in (transactions["from"], transactions["to"], usage["from"], history["to"]):
        (schema, _null) = day["schema"]["anyOf"]
        assert schema == {"type": "string", "format": "date", "pattern": DAY_PATTERN}
    assert (
        transactions["limit"]["schema"] | {"minimum": 1, "maximum": 200}
        == transactions["limit"]["schema"]
    )
    assert detail["transaction_id"]["schema"]["minimum"] == 1
    assert detail["transaction_id"]["schema"]["maximum"] == 2**63 - 1
    assert transactions["cursor"]["schema"]["anyOf"][0]["pattern"] == CURSOR_PATTERN
    for text in ("endpoint", "status", "q"):
        assert transactions[text]["schema"]["pattern"] == TEXT_PATTERN
    assert usage["granularity"]["schema"]["enum"] == ["day", "month"]
    assert usage["group_by"]["schema"]["enum"] == ["service", "endpoint"]
    components = api.get_openapi_schema()["components"]["schemas"]
    assert "ai_images" in components["Service"]["enum"]
    assert "usage" in components["Kind"]["enum"]


def test_the_day_pattern_spans_exactly_the_local_days_every_range_may_name() -> None:
    inside = (LOCAL_DATE_MIN, LOCAL_DATE_MAX, date(2000, 2, 29), date(9899, 12, 31))
    for day in inside:
        assert re.fullmatch(DAY_PATTERN, f"{day:%Y-%m-%d}"), day
    for text in ("1969-12-31", "9999-01-01", "0001-01-01", "2025-13-01", "2025-00-10"):
        assert not re.fullmatch(DAY_PATTERN, text), text
    assert re.fullmatch(MONTH_PATTERN, f"{LOCAL_DATE_MIN:%Y-%m}")
    assert re.fullmatch(MONTH_PATTERN, f"{LOCAL_DATE_MAX:%Y-%m}")
    assert not re.fullmatch(MONTH_PATTERN, "1969-12")


@pytest.mark.parametrize(
    "value",
    [
        "0",  # pydantic alone read it as a Unix time: 1970-01-01
        "1718000000",
        "2025-06-10T00:00:00",
        "2025-6-10",
        "2025-02-30",
        "1969-12-31",
        "9999-12-31",
        "٢٠٢٥-٠٦-١٠",
        " 2025-06-10",
    ],
)
def test_a_day_not_as_documented_is_refused_everywhere(
    client: Client, alice_license: License, make_key: Any, value: str
) -> None:
    raw = make_key(alice_license)
    for tail in ("/transactions", "/usage", "/history.csv"):
        for name in ("from", "to"):
            answer = client.get(_url(alice_license, tail), {name: value}, **bearer(raw))
            _refused(answer, name)


def test_the_first_and_last_days_are_answered_and_a_backwards_range_is_empty(
    client: Client, alice_license: License, make_key: Any, settings: Any
) -> None:
    settings.HISTORY_CSV_RATE_LIMIT = 100
    buy(alice_license, "5.00")
    raw = make_key(alice_license)
    ends = {"from": f"{LOCAL_DATE_MIN}", "to": f"{LOCAL_DATE_MAX}"}
    assert client.get(_url(alice_license, "/transactions"), ends, **bearer(raw)).status_code == 200
    assert client.get(_url(alice_license, "/history.csv"), ends, **bearer(raw)).status_code == 200
    backwards = {"from": "2025-06-30", "to": "2025-06-01"}
    listed = client.get(_url(alice_license, "/transactions"), backwards, **bearer(raw))
    assert listed.status_code == 200 and listed.json()["data"] == []
    csv: Any = client.get(_url(alice_license, "/history.csv"), backwards, **bearer(raw))
    assert csv.status_code == 200
    assert len(b"".join(csv.streaming_content).decode().splitlines()) == 1  # the header


@pytest.mark.parametrize("month", ["2025-6", "2025-13", "2025-00", "1969-12", "202506", "0"])
def test_a_month_not_written_yyyy_mm_is_refused(
    client: Client, alice_license: License, make_key: Any, month: str
) -> None:
    raw = make_key(alice_license)
    answer = client.get(_url(alice_license, f"/statements/{month}"), **bearer(raw))
    _refused(answer, "month")
    assert "YYYY-MM" in answer.json()["error"]["message"]


def test_a_month_that_has_not_begun_has_no_statement_yet(
    client: Client, alice_license: License, make_key: Any
) -> None:
    raw = make_key(alice_license)
    today = timezone.localtime(timezone.now(), alice_license.tzinfo).date()
    this_month = today.replace(day=1)
    next_month = (this_month + timedelta(days=32)).replace(day=1)
    assert (
        client.get(
            _url(alice_license, f"/statements/{this_month:%Y-%m}"), **bearer(raw)
        ).status_code
        == 200
    )
    assert client.get(_url(alice_license, "/statements/1970-01"), **bearer(raw)).status_code == 200
    later = client.get(_url(alice_license, f"/statements/{next_month:%Y-%m}"), **bearer(raw))
    assert later.status_code == 404 and later.json()["error"]["code"] == "not_found"


def test_cursors_the_api_gives_out_match_their_pattern_and_any_cursor_of_it_is_answered(
    client: Client, alice_license: License, make_key: Any
) -> None:
    buy(alice_license, "5.00")
    for _ in range(3):
        spend(alice_license, "0.10")
    raw = make_key(alice_license)
    page = client.get(_url(alice_license, "/transactions"), {"limit": 1}, **bearer(raw)).json()
    assert re.fullmatch(CURSOR_PATTERN, page["next_cursor"])
    assert Cursor.parse(page["next_cursor"])
    for made_up in ("99999999999999999.999999999999999999", "-9999999999999999.1", "0.1"):
        answer = client.get(
            _url(alice_license, "/transactions"), {"cursor": made_up}, **bearer(raw)
        )
        assert answer.status_code == 200, (made_up, answer.content)
    for garbage in ("1", "1.0", "1_000.1", "+1.1", "1.1 ", "999999999999999999.1"):
        answer = client.get(
            _url(alice_license, "/transactions"), {"cursor": garbage}, **bearer(raw)
        )
        assert _refused(answer, "cursor") == "invalid_cursor", garbage


@pytest.mark.parametrize("name", ["q", "endpoint", "status"])
def test_control_characters_in_text_are_refused_not_a_server_error(
    client: Client, alice_license: License, make_key: Any, name: str
) -> None:
    raw = make_key(alice_license)
    for value in ("a\x00b", "\x1b[31m", "line\nbreak"):
        answer = client.get(_url(alice_license, "/transactions"), {name: value}, **bearer(raw))
        _refused(answer, name)
    assert (
        client.get(_url(alice_license, "/transactions"), {name: "é ✓"}, **bearer(raw)).status_code
        == 200
    )


@pytest.mark.parametrize("transaction_id", ["0", "-1", str(2**63)])
def test_a_transaction_id_out_of_bounds_is_refused(
    client: Client, alice_license: License, make_key: Any, transaction_id: str
) -> None:
    raw = make_key(alice_license)
    answer = client.get(_url(alice_license, f"/transactions/{transaction_id}"), **bearer(raw))
    _refused(answer, "transaction_id")


def test_a_key_with_a_nul_in_it_is_not_a_key_not_a_server_error(
    client: Client, alice_license: License
) -> None:
    for presented in ("tcp_0000\x00000_secret", "tcp_\x00\x00\x00\x00\x00\x00\x00\x00_x"):
        answer = client.get(_url(alice_license), **bearer(presented))
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthenticated"
