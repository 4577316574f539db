"""Statement PDFs are an expensive download like the CSV history (issue 18, finding 1):
limited per login and license whatever the method, and a HEAD never builds the PDF."""

from datetime import timedelta

import pytest
from django.urls import reverse

from dashboard.views import statements
from tests.accounts.factories import MembershipFactory
from tests.ledger import T0, buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def june(license_a):
    license_a.member_since = T0.date() - timedelta(days=40)
    license_a.save()
    buy(license_a, "20", at=T0)
    return reverse(
        "dashboard:statement_pdf", kwargs={"license_id": license_a.public_id, "month": "2025-06"}
    )


@pytest.fixture
def pdfs_built(monkeypatch):
    built = []
    real = statements.statement_pdf

    def counting(statement, **kwargs):
        built.append(statement.month)
        return real(statement, **kwargs)

    monkeypatch.setattr(statements, "statement_pdf", counting)
    return built


def test_head_is_counted_and_never_builds_the_pdf(client_a, june, settings, pdfs_built):
    settings.STATEMENT_PDF_RATE_LIMIT = 3
    for _ in range(3):
        head = client_a.head(june)
        assert head.status_code == 200
        assert head["Content-Type"] == "application/pdf"
        assert head["Content-Disposition"].startswith("attachment;")
        assert head.content == b""
    assert pdfs_built == []
    refused = client_a.get(june)  # three HEADs used the allowance
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Statement downloads are limited to 3" in refused.content.decode()
    assert pdfs_built == []


def test_a_flood_of_statement_downloads_is_cut_off_at_the_limit(
    client_a, june, settings, pdfs_built
):
    settings.STATEMENT_PDF_RATE_LIMIT = 5
    statuses = [client_a.get(june).status_code for _ in range(12)]
    statuses += [client_a.head(june).status_code for _ in range(12)]
    assert statuses.count(200) == 5 and statuses.count(429) == 19
    assert len(pdfs_built) == 5


def test_one_member_cannot_use_up_another_members_statements(
    client, license_a, member_a, june, settings
):
    settings.STATEMENT_PDF_RATE_LIMIT = 1
    client.force_login(member_a)
    assert client.get(june).content.startswith(b"%PDF")
    assert client.get(june).status_code == 429
    client.force_login(MembershipFactory(license=license_a).user)
    assert client.get(june).content.startswith(b"%PDF")
