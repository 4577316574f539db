"""The sync of exactly known pages: each good record charged once and exactly, whatever else
the page holds, and however the pages are cut (the sync fetches one page ahead while it
records the one before).

The upstream here is a real HTTP server serving a fixed list of records, so the test knows
every record and every charge in advance (the simulator's streams are random)."""

import json
import threading
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from billing.ledger.selectors import balance_get
from billing.models import LedgerEntry
from billing.money import charge_for
from billing.prices.selectors import price_book_get
from portal.models import CircuitBreaker
from tests.ledger import assert_ledger_consistent
from usage.models import QuarantinedRecord, SyncState
from usage.services.sync import usage_sync_license

pytestmark = pytest.mark.django_db


class FixedPages(BaseHTTPRequestHandler):
    """GET /v1/usage over a fixed list of records; the cursor is the next record's index."""

    records: list = []
    asked: list[str] = []

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        start = int((query.get("after") or ["0"])[0] or 0)
        end = start + int(query["limit"][0])
        type(self).asked.append(str(start))
        body = json.dumps(
            {
                "records": self.records[start:end],
                "next_cursor": str(min(end, len(self.records))),
                "has_more": end < len(self.records),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fixed_upstream(settings):
    def serve(records: list) -> type[FixedPages]:
        handler = type("Pages", (FixedPages,), {"records": records, "asked": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        settings.UPSTREAM_URL = f"http://127.0.0.1:{server.server_address[1]}"
        return handler

    servers: list[ThreadingHTTPServer] = []
    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def upstream_record(license, record_id: str, at, *, status="success", **quantities) -> dict:
    counts = {"input_tokens": 0, "cached_tokens": 0, "completion_tokens": 0, "images": 0}
    return {
        "id": record_id,
        "license": license.key,
        "occurred_at": at.isoformat(),
        "status": status,
        "request_id": f"req-{record_id}",
        "endpoint": "/v1/chat",
        **counts,
        **quantities,
    }


@pytest.mark.parametrize("page_size", [2, 1000])
def test_a_repeat_and_a_malformed_record_among_good_ones_leave_each_good_one_charged_once(
    fixed_upstream, license_a, settings, page_size
):
    settings.UPSTREAM_PAGE_SIZE = page_size
    at = timezone.now() - timedelta(days=1)
    good = [
        upstream_record(license_a, "g1", at, input_tokens=1234, images=1),
        upstream_record(license_a, "g2", at, completion_tokens=777),
        upstream_record(license_a, "g3", at, status="error"),  # a failed call: one zero charge
    ]
    bad = upstream_record(license_a, "bad", at, cached_tokens=-5)
    upstream = fixed_upstream([good[0], good[1], good[0], bad, good[2]])

    result = usage_sync_license(license=license_a, trigger="test")

    assert result.complete and not result.error
    assert (result.records_charged, result.records_duplicate, result.records_quarantined) == (
        3,
        1,
        1,
    )
    prices = price_book_get()
    expected = {
        ("g1:ai_data", -charge_for(1234, prices.unit_price("ai_data", at)), 1),
        ("g1:ai_images", -charge_for(1, prices.unit_price("ai_images", at)), 0),
        ("g2:ai_data_completion", -charge_for(777, prices.unit_price("ai_data_completion", at)), 1),
        ("g3:ai_data", Decimal("0.000000"), 1),
    }
    entries = set(
        LedgerEntry.objects.for_license(license_a).values_list("external_id", "amount", "api_calls")
    )
    assert entries == expected
    assert balance_get(license_a).balance == sum(amount for _, amount, _ in expected)
    quarantined = QuarantinedRecord.objects.for_license(license_a).get()
    assert (quarantined.record_id, quarantined.reason_code) == ("bad", "bad_quantity")
    assert_ledger_consistent(license_a)
    # Every page asked for once, each from the cursor the page before ended at.
    pages = -(-5 // page_size)
    assert upstream.asked == [str(i * page_size) for i in range(pages)]
    assert SyncState.objects.for_license(license_a).get().cursor == "5"

    # A replay from the start charges nothing and quarantines nothing new.
    SyncState.objects.for_license(license_a).update(cursor="")
    replay = usage_sync_license(license=license_a, trigger="test")
    assert replay.complete and (replay.records_charged, replay.records_quarantined) == (0, 0)
    assert LedgerEntry.objects.for_license(license_a).count() == len(expected)
    assert QuarantinedRecord.objects.for_license(license_a).count() == 1
    assert_ledger_consistent(license_a)


def test_a_sync_limited_to_some_pages_asks_for_no_page_beyond_them(
    fixed_upstream, license_a, settings
):
    # Fetching ahead stops at the run's limit: the next run starts from the stored cursor.
    settings.UPSTREAM_PAGE_SIZE = 1
    at = timezone.now() - timedelta(days=1)
    upstream = fixed_upstream(
        [upstream_record(license_a, f"r{i}", at, input_tokens=10) for i in range(5)]
    )

    first = usage_sync_license(license=license_a, trigger="test", max_pages=2)
    assert (first.pages, first.records_charged, first.complete) == (2, 2, False)
    assert upstream.asked == ["0", "1"]
    rest = usage_sync_license(license=license_a, trigger="test")
    assert (rest.records_charged, rest.complete) == (3, True)
    assert upstream.asked == ["0", "1", "2", "3", "4"]
    assert LedgerEntry.objects.for_license(license_a).count() == 5


class PageWithoutCursor(FixedPages):
    def do_GET(self) -> None:
        body = json.dumps({"records": self.records}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_an_answer_that_is_not_a_page_charges_nothing_and_is_no_outage(license_a, settings):
    # The upstream answered, so the circuit breaker does not count it as down.
    at = timezone.now() - timedelta(days=1)
    handler = type(
        "Broken", (PageWithoutCursor,), {"records": [upstream_record(license_a, "r", at)]}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.UPSTREAM_URL = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = usage_sync_license(license=license_a, trigger="test")
    finally:
        server.shutdown()
        server.server_close()
    assert "without records, next_cursor or has_more" in result.error
    assert not LedgerEntry.objects.for_license(license_a).exists()
    assert not CircuitBreaker.objects.filter(name="upstream", consecutive_failures__gt=0).exists()
