"""Download History: the customer's whole ledger as CSV, streamed, newest first, in the
license's timezone, safe to open in a spreadsheet, and only ever their own."""

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.charges.services import UsageRecord, usage_record_batch
from billing.models import LedgerEntry
from billing.refunds.services import refund_issue
from dashboard.forms import TransactionFilterForm
from tests.ledger import buy, charge, record, record_usage, refund, usage_entry
from tests.matching import search

pytestmark = pytest.mark.django_db

HEADER = [
    "date_time", "local_time", "type", "service", "amount", "balance", "tokens", "images",
    "description", "entry_id",
]  # fmt: skip
# Columns by name, for reading rows.
DATE, LOCAL, TYPE, SERVICE, AMOUNT, BALANCE, TOKENS, IMAGES, DESCRIPTION, ENTRY = range(10)


def url(license, **params):
    base = reverse("dashboard:history_csv", kwargs={"license_id": license.public_id})
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{base}?{query}" if query else base


def dashboard(license):
    return reverse("dashboard:overview", kwargs={"license_id": license.public_id})


def rows_of(response):
    """The file as a spreadsheet program reads it: UTF-8 after its byte order mark."""
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def new_york(license_a):
    license_a.timezone = "America/New_York"
    license_a.save()
    return license_a


def test_the_whole_history_streams_newest_first_in_the_license_timezone(
    client_a, new_york, billing_user
):
    at = datetime(2025, 6, 30, 18, 30, 15, tzinfo=UTC)  # 14:30:15 in New York (EDT)
    buy(new_york, "20.00", "pay_1", at=at - timedelta(days=2), description="Top-up")
    record_usage(new_york, "r1", at=at - timedelta(days=1), input_tokens=1234, images=2)
    charge = usage_entry(new_york, "r1", "ai_images")
    refund = refund_issue(
        acting_user=billing_user,
        license=new_york,
        amount=Decimal("0.0001"),
        reason="bad image",
        idempotency_key="k-1",
        refund_of=charge,
    ).entry
    with time_machine.travel(at, tick=False):
        response = client_a.get(url(new_york))
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="token_usage_history_2025-06-30_14-30-15.csv"'
    )
    assert response["Cache-Control"] == "no-store"
    rows = rows_of(response)
    assert rows[0] == HEADER
    by_type = [(r[TYPE], r[SERVICE], r[AMOUNT]) for r in rows[1:]]
    # The refund happened "now" (real time), after everything else: it comes first. The type
    # is the movement's name (billing.ledger.kinds), as the API names it.
    assert by_type[0] == ("usage_refund", "ai_images", "0.000100")
    assert set(by_type[1:3]) == {
        ("usage", "ai_data", "-0.000740"),
        ("usage", "ai_images", "-0.000200"),
    }
    assert by_type[3] == ("purchase", "", "20.000000")
    purchase_row = rows[4]
    assert purchase_row[DATE] == "2025-06-28T14:30:15-04:00"
    # Beside the ISO moment, the license's wall clock as spreadsheets read a date.
    assert purchase_row[LOCAL] == "2025-06-28 14:30:15"
    assert purchase_row[DESCRIPTION] == "Top-up"
    assert purchase_row[BALANCE] == "20.000000"
    assert rows[1][ENTRY] == str(refund.pk)
    assert rows[1][BALANCE] == "19.999160"  # 20 - 0.00074 - 0.0002 + 0.0001: the balance now
    usage_rows = {r[SERVICE]: r for r in rows[2:4]}
    assert usage_rows["ai_data"][TOKENS : IMAGES + 1] == ["1234", "0"]
    assert usage_rows["ai_images"][TOKENS : IMAGES + 1] == ["0", "2"]


def test_cells_a_spreadsheet_would_run_are_neutralized_and_amounts_stay_numbers(
    client_a, license_a
):
    nasty = ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    for i, text in enumerate(nasty):
        buy(license_a, "1.50", f"pay_{i}", description=text)
    usage_record_batch(
        license=license_a,
        records=[
            UsageRecord(
                id="evil",
                occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
                input_tokens=1000,
                endpoint="=cmd|' /C calc'!A0",
            )
        ],
    )
    rows = rows_of(client_a.get(url(license_a)))
    descriptions = [r[DESCRIPTION] for r in rows[1:]]
    for text in nasty:
        assert "'" + text in descriptions
    assert "'=cmd|' /C calc'!A0" in descriptions
    for row in rows[1:]:
        assert not row[DESCRIPTION] or row[DESCRIPTION][0] not in "=+-@\t\r"
        # Every amount and balance parses as a number: nothing was prefixed.
        Decimal(row[AMOUNT])
        Decimal(row[BALANCE])
    amounts = {r[AMOUNT] for r in rows[1:]}
    assert amounts == {"1.500000", "-0.000600"}


def test_the_file_is_utf8_with_a_bom_and_accents_survive_a_real_parse(client_a, license_a):
    buy(license_a, "1", "pay_1", description="Café crédits ☕ – 東京, «spécial»")
    charge(license_a, record(datetime(2025, 1, 1, tzinfo=UTC), images=3, endpoint="/v1/résumé"))
    rows = rows_of(client_a.get(url(license_a)))
    assert rows[0] == HEADER  # the BOM is not part of the first column's name
    assert rows[1][DESCRIPTION] == "Café crédits ☕ – 東京, «spécial»"
    assert rows[2][DESCRIPTION].startswith("/v1/résumé")


def ledger_reads(queries):
    return [q for q in queries.captured_queries if "billing_ledgerentry" in q["sql"]]


def test_the_first_bytes_leave_before_the_history_is_read(client_a, license_a, monkeypatch):
    """Keyset pages: the header goes out before any entry is read, then one query per
    page; entries sharing a moment across a page boundary are neither lost nor doubled."""
    monkeypatch.setattr("billing.history.export.HISTORY_PAGE_SIZE", 2)
    at = datetime(2025, 3, 1, tzinfo=UTC)
    # One record = 4 entries at the very same moment, straddling the 2-row pages.
    record_usage(
        license_a, "quad", at=at, input_tokens=1, cached_tokens=1, completion_tokens=1, images=1
    )
    record_usage(license_a, "solo", at=at - timedelta(seconds=1), input_tokens=5)
    buy(license_a, "3", "pay_1", at=at + timedelta(seconds=1))
    response = client_a.get(url(license_a))
    assert isinstance(response, StreamingHttpResponse)
    content = response.streaming_content
    assert isinstance(content, Iterator)  # a synchronous stream
    chunks = iter(content)
    with CaptureQueriesContext(connection) as queries:
        first = next(chunks)
        assert first.decode().startswith("\ufeffdate_time,local_time,type,")
        assert len(queries) == 0
        second = next(chunks)
        assert len(ledger_reads(queries)) == 1  # only the first page so far
        rest = b"".join(chunks)
    page_queries = ledger_reads(queries)
    assert len(page_queries) == 4  # 6 entries in pages of 2: 2 + 2 + 2, then an empty page
    lines = list(csv.reader(io.StringIO((first + second + rest).decode("utf-8-sig"))))[1:]
    ids = [int(r[ENTRY]) for r in lines]
    assert len(ids) == len(set(ids)) == 6
    stamps = [r[DATE] for r in lines]
    assert stamps == sorted(stamps, reverse=True)
    ties = [int(r[ENTRY]) for r in lines if r[DATE] == at.isoformat()]
    assert ties == sorted(ties, reverse=True)
    # The running balance stays exact across the page boundaries, ties included.
    assert [Decimal(r[BALANCE]) for r in lines] == running_balances(license_a, ids)


def test_no_history_says_there_is_nothing_yet_and_is_no_file(client_a, license_a):
    """Issue 28: an empty license's Download History answered 200 with the dashboard's HTML
    (through a redirect), which a download saves as a file. Now the page says there is
    nothing yet, with a 404: no file is kept, and nothing poses as a CSV."""
    response = client_a.get(url(license_a))
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "Content-Disposition" not in response
    page = response.content.decode()
    assert "Nothing to download yet" in page
    assert "No transaction history to download yet." in page
    assert f'href="{dashboard(license_a)}"' in page
    assert LedgerEntry.objects.for_license(license_a).count() == 0


def test_filters_are_local_dates_inclusive_and_a_type(client_a, new_york):
    def at_local(y, mo, d, h=0, mi=0, s=0):
        return datetime(y, mo, d, h, mi, s, tzinfo=new_york.tzinfo)

    buy(new_york, "1", "before", at=at_local(2025, 5, 31, 23, 59, 59))
    buy(new_york, "2", "first", at=at_local(2025, 6, 1))
    record_usage(new_york, "mid", at=at_local(2025, 6, 15, 12), images=1)
    buy(new_york, "3", "last", at=at_local(2025, 6, 30, 23, 59, 59))
    buy(new_york, "4", "after", at=at_local(2025, 7, 1))

    rows = rows_of(client_a.get(url(new_york, **{"from": "2025-06-01", "to": "2025-06-30"})))
    assert [r[AMOUNT] for r in rows[1:]] == ["3.000000", "-0.000100", "2.000000"]
    assert rows[-1][DATE] == "2025-06-01T00:00:00-04:00"
    assert rows[-1][LOCAL] == "2025-06-01 00:00:00"
    # The balance after each entry counts what lies outside the chosen dates too.
    assert [r[BALANCE] for r in rows[1:]] == ["5.999900", "2.999900", "3.000000"]

    rows = rows_of(client_a.get(url(new_york, type="purchase", to="2025-06-01")))
    assert [r[AMOUNT] for r in rows[1:]] == ["2.000000", "1.000000"]
    assert [r[BALANCE] for r in rows[1:]] == ["3.000000", "1.000000"]

    rows = rows_of(client_a.get(url(new_york, type="usage")))
    assert [(r[TYPE], r[BALANCE]) for r in rows[1:]] == [("usage", "2.999900")]


def test_filters_matching_nothing_say_so(client_a, license_a):
    buy(license_a, "1", "pay_1")
    response = client_a.get(url(license_a, type="refund"))
    assert response.status_code == 404 and "Content-Disposition" not in response
    page = response.content.decode()
    assert "No transactions match the chosen filters." in page
    # Back to All transactions with the same filters, to change them.
    transactions = reverse("dashboard:transactions", kwargs={"license_id": license_a.public_id})
    assert f'href="{transactions}?type=refund"' in page


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-13-01"}, "'from' must be a date written YYYY-MM-DD"),
        ({"to": "yesterday"}, "'to' must be a date written YYYY-MM-DD"),
        (
            {"type": "gift"},
            "'type' must be one of purchase, purchase_refund, credit, usage_refund, usage, "
            "expiry, refund",
        ),
        ({"service": "ai_music"}, "'service' must be one of ai_images, ai_data,"),
        ({"from": "2025-06-02", "to": "2025-06-01"}, "'to' must be on or after the 'from' date"),
        ({"from": "0001-01-01"}, "'from' must be between"),
        ({"to": "9999-12-31"}, "'to' must be between"),
    ],
)
def test_a_bad_filter_is_a_clear_message_never_an_error_page(client_a, license_a, params, field):
    buy(license_a, "1", "pay_1")
    response = client_a.get(url(license_a, **params))
    assert response.status_code == 302
    assert response["Location"] == dashboard(license_a)
    (message,) = messages_of(response)
    assert message.startswith("Could not download the history:")
    assert field in message


def test_another_license_history_is_a_404(client_a, license_b):
    buy(license_b, "99", "pay_b", description="Bravo secret purchase")
    response = client_a.get(url(license_b))
    assert response.status_code == 404
    assert b"Bravo" not in response.content


def test_the_filename_uses_the_license_timezone_date(client_a, license_a):
    license_a.timezone = "Asia/Tokyo"
    license_a.save()
    buy(license_a, "1", "pay_1")
    with time_machine.travel(datetime(2025, 12, 31, 20, 0, 5, tzinfo=UTC), tick=False):
        response = client_a.get(url(license_a))
    filename = search(r'filename="(.+)"', response["Content-Disposition"]).group(1)
    assert filename == "token_usage_history_2026-01-01_05-00-05.csv"


def running_balances(license, ids: list[int]) -> list[Decimal]:
    """The balance right after each of these entries: the sum of every entry of the license
    up to it in (occurred_at, id) order, summed here in Python."""
    after: dict[int, Decimal] = {}
    total = Decimal(0)
    for e in LedgerEntry.objects.for_license(license).order_by("occurred_at", "id"):
        total += e.amount
        after[e.id] = total
    return [after[i] for i in ids]


def python_csv(license, entries=None) -> str:
    """The history as Python's csv module writes it with billing.csvsafe's cell rules: the
    reference the SQL-written download must equal byte for byte (BOM included)."""
    from billing.csvsafe import money_cell, safe_cell
    from billing.history.export import HISTORY_HEADER

    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HISTORY_HEADER)
    if entries is None:
        entries = LedgerEntry.objects.for_license(license).order_by("-occurred_at", "-id")
    entries = list(entries)
    balances = running_balances(license, [e.id for e in entries])
    for e, balance in zip(entries, balances, strict=True):
        local = e.occurred_at.astimezone(license.tzinfo)
        writer.writerow(
            (
                local.isoformat(timespec="seconds"),
                f"{local:%Y-%m-%d %H:%M:%S}",
                e.movement.name,
                safe_cell(e.service),
                money_cell(e.amount),
                money_cell(balance),
                e.tokens,
                e.images,
                safe_cell(e.description),
                e.id,
            )
        )
    return buffer.getvalue()


@pytest.mark.parametrize(
    "tz", ["UTC", "America/New_York", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe"]
)
def test_the_download_is_byte_for_byte_what_the_csv_module_writes(
    client_a, license_a, monkeypatch, tz
):
    """PostgreSQL writes the lines (for speed); every rule the Python writer follows —
    formula neutralizing, quoting, 6-place amounts, local time with its offset across
    clock changes and half-hour zones — must come out the same."""
    monkeypatch.setattr("billing.history.export.HISTORY_PAGE_SIZE", 3)
    license_a.timezone = tz
    license_a.save()
    texts = [
        "plain",
        "comma, inside",
        'a "quoted" word',
        '"',
        "line\nbreak",
        "carriage\rreturn",
        "\r\nboth",
        '=SUM(A1), "x"',
        "+1",
        "-2",
        "@me",
        "\ttab first",
        "'already quoted",
        " leading space",
        "Café ☕ – 東京",
        "",
    ]
    start = datetime(2025, 3, 8, 23, 59, 59, 999999, tzinfo=UTC)  # spans the US spring change
    for i, text in enumerate(texts):
        at = start + timedelta(hours=7 * i, microseconds=i)
        buy(license_a, f"{i + 1}.000001", f"pay_{i}", description=text, at=at)
    # Across Lord Howe's half-hour clock change (15:00 UTC); a record's entries share a moment.
    for i in range(5):
        at = datetime(2025, 4, 5, 14, 30, tzinfo=UTC) + timedelta(minutes=17 * i)
        record_usage(license_a, f"u{i}", at=at, input_tokens=10**9 + i, cached_tokens=1, images=i)
    record_usage(license_a, "zero", at=start, input_tokens=0)  # a zero charge
    body = b"".join(client_a.get(url(license_a)).streaming_content).decode()
    assert body == python_csv(license_a)


@pytest.mark.parametrize("page_size", [1, 4, 5000])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"type": "usage"},
        {"type": "credit"},
        {"type": "usage_refund"},
        {"service": "ai_images"},
        {"endpoint": "/v1/images"},
        {"status": "error"},
        {"from": "2025-03-09", "to": "2025-03-10"},
        {"from": "2025-03-10", "type": "refund"},
        {"to": "2025-03-09", "service": "ai_data"},
    ],
)
def test_the_filters_of_all_transactions_pick_lines_and_the_balance_counts_every_entry(
    client_a, license_a, billing_user, monkeypatch, page_size, params
):
    """The same filters as All transactions; each line's balance is still the license's
    balance right after that entry, whatever the filter left out around it."""
    monkeypatch.setattr("billing.history.export.HISTORY_PAGE_SIZE", page_size)
    license_a.timezone = "America/New_York"
    license_a.save()
    start = datetime(2025, 3, 8, 20, tzinfo=UTC)  # around New York's spring clock change
    buy(license_a, "10", "pay_0", at=start)
    for i in range(12):
        at = start + timedelta(hours=5 * i)
        charge(
            license_a,
            record(at, input_tokens=1000 * (i + 1), cached_tokens=i, endpoint="/v1/chat"),
            record(at, images=i + 1, endpoint="/v1/images"),
            record(at + timedelta(minutes=1), endpoint="/v1/chat", status="error"),
        )
    first = usage_entry_of(license_a, "ai_images")
    refund(license_a, first, "0.000100", billing_user, reason="bad image")
    refund_issue(
        acting_user=billing_user, license=license_a, amount=Decimal("0.5"), reason="sorry",
        idempotency_key="gw-csv",
    )  # fmt: skip
    buy(license_a, "5", "pay_1", at=start + timedelta(days=2))

    response = client_a.get(url(license_a, **params))
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")
    form_filter = TransactionFilterForm(params)
    assert form_filter.is_valid()
    chosen = form_filter.transaction_filter(license_a).apply(
        LedgerEntry.objects.for_license(license_a)
    )
    assert body == python_csv(license_a, chosen.order_by("-occurred_at", "-id"))


def usage_entry_of(license, service):
    return (
        LedgerEntry.objects.for_license(license)
        .filter(kind="usage", service=service)
        .order_by("id")
        .first()
    )


def test_all_transactions_download_carries_its_filters_but_not_its_search(client_a, license_a):
    buy(license_a, "5", "pay_1", at=datetime(2025, 6, 1, tzinfo=UTC))
    charge(license_a, record(datetime(2025, 6, 2, tzinfo=UTC), images=3, endpoint="/v1/x"))
    page = client_a.get(
        reverse("dashboard:transactions", kwargs={"license_id": license_a.public_id}),
        {"type": "usage", "endpoint": "/v1/x", "from": "2025-06-01", "before": "1.1"},
    )
    link = re.search(r'href="([^"]*history\.csv[^"]*)"[^>]*>Download CSV', page.content.decode())
    assert link is not None
    href = link.group(1).replace("&amp;", "&")
    assert "type=usage" in href and "endpoint=%2Fv1%2Fx" in href and "from=2025-06-01" in href
    assert "before=" not in href and "q=" not in href
    rows = rows_of(client_a.get(href))
    assert [(r[TYPE], r[AMOUNT], r[BALANCE]) for r in rows[1:]] == [
        ("usage", "-0.000300", "4.999700")
    ]
