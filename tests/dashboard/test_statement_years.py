"""Issue 28: the statements list shows each month's opening and closing balance, the
statement's own figures (billing.ledger.bridge.bridge_month); a whole year downloads as one
PDF holding each month's statement, limited like a month's PDF (a 429 page over the limit),
and only the license's own."""

import subprocess
from datetime import date, timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.ledger.bridge import bridge_month
from billing.money import format_money
from tests.ledger import T0, buy, charge, record

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(license_a):
    """Alpha from May 2025: $20 bought in June, usage in June and July, $5 in September."""
    license_a.member_since = date(2025, 5, 3)
    license_a.save()
    buy(license_a, "20", at=T0)
    charge(license_a, record(T0 + timedelta(hours=1), input_tokens=400_000, record_id="june"))
    charge(license_a, record(T0 + timedelta(days=30), input_tokens=900_000, record_id="july"))
    buy(license_a, "5", at=T0 + timedelta(days=95))
    return license_a


def _url(name: str, license, **kwargs) -> str:
    return reverse(f"dashboard:{name}", kwargs={"license_id": license.public_id, **kwargs})


def _bridge(license, month: date):
    return bridge_month(license_id=license.pk, timezone=license.timezone, month=month).bridge


def test_the_list_shows_each_months_opening_and_closing_from_the_bridge(history, client_a):
    body = unescape(client_a.get(_url("statements", history)).content.decode())
    months = [date(2025, m, 1) for m in range(5, 13)]
    closings = set()
    for month in months:
        bridge = _bridge(history, month)
        row = body[body.index(f'data-month="{month:%Y-%m}"') :].split("</tr>", 1)[0]
        assert f'data-testid="opening">{format_money(bridge.opening)}<' in row
        assert f'data-testid="closing">{format_money(bridge.closing)}<' in row
        closings.add(bridge.closing)
    assert len(closings) >= 3  # the months differ: a list of one repeated figure would pass
    assert _bridge(history, date(2025, 6, 1)).opening == 0
    year_pdf = _url("statements_year_pdf", history, year=2025)
    assert f'href="{year_pdf}"' in body and "Download 2025 as one PDF" in body


def test_a_years_pdf_holds_each_months_statement(history, client_a, tmp_path):
    response = client_a.get(_url("statements_year_pdf", history, year=2025))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert f"statement_{history.key}_2025.pdf" in response["Content-Disposition"]
    path = tmp_path / "2025.pdf"
    path.write_bytes(response.content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    # Each month from May to December, oldest first, as its own statement with its closing.
    parts = text.split("Statement - ")[1:]
    months = [date(2025, m, 1) for m in range(5, 13)]
    assert [part.split("\n", 1)[0].strip() for part in parts] == [f"{m:%B %Y}" for m in months]
    for month, part in zip(months, parts, strict=True):
        closing = next(line for line in part.splitlines() if "Closing balance" in line)
        assert format_money(_bridge(history, month).closing) in closing, month
    assert text.count("\f") >= len(months)  # a page (or more) each


def test_a_year_without_statements_and_another_license_are_404s(
    history, client_a, client, member_b, license_b
):
    assert client_a.get(_url("statements_year_pdf", history, year=2024)).status_code == 404
    client.force_login(member_b)
    assert client.get(_url("statements_year_pdf", history, year=2025)).status_code == 404
    assert client.get(_url("statements", history)).status_code == 404


def test_year_pdfs_share_the_statement_download_limit_and_answer_429_over_it(
    history, client_a, settings
):
    settings.STATEMENT_PDF_RATE_LIMIT = 2
    year = _url("statements_year_pdf", history, year=2025)
    assert client_a.get(year).content.startswith(b"%PDF")
    assert client_a.get(_url("statement_pdf", history, month="2025-06")).status_code == 200
    refused = client_a.get(year)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused["Content-Type"].startswith("text/html")
    assert "Statement downloads are limited to 2" in refused.content.decode()
    assert client_a.head(year).status_code == 429


def test_the_list_costs_the_same_queries_for_months_or_years_of_history(history, client_a):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client_a.get(_url("statements", history)).status_code == 200
        return len(captured)

    queries()  # the login's first page (its session's own queries)
    months_of_history = queries()
    history.member_since = date(2021, 1, 4)  # five more years of (empty) months
    history.save()
    assert queries() == months_of_history
