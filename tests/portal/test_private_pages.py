"""Logged-in pages and exports are never kept by a browser or shared cache (issue 18)."""

import pytest
from django.urls import reverse

from tests.ledger import buy

pytestmark = pytest.mark.django_db


def test_logged_in_pages_and_exports_send_no_store(client_a, license_a):
    buy(license_a, "5.00", "pay_1")
    for name in ("overview", "reports", "help", "test_api", "history_csv", "purchase"):
        response = client_a.get(
            reverse(f"dashboard:{name}", kwargs={"license_id": license_a.public_id})
        )
        assert response.status_code == 200, name
        assert "no-store" in response["Cache-Control"], name
    assert "no-store" in client_a.get("/licenses/")["Cache-Control"]


def test_after_logout_a_back_button_cannot_show_a_cached_balance(client_a, license_a):
    page = client_a.get(f"/l/{license_a.public_id}/")
    assert page["Cache-Control"] == "no-store"
    client_a.post("/accounts/logout/")
    assert client_a.get(f"/l/{license_a.public_id}/").status_code == 302


def test_staff_pages_statements_and_api_answers_send_no_store(
    client, client_a, license_a, admin_client, capsys
):
    from django.core.management import call_command

    from tests.ledger import T0

    buy(license_a, "5.00", "pay_2", at=T0)
    for url in ("/admin/", "/admin/billing/ledgerentry/", "/admin/billing/creditapproval/"):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
    statements = client_a.get(f"/l/{license_a.public_id}/statements/")
    assert "no-store" in statements["Cache-Control"]
    capsys.readouterr()
    call_command("api_key_create", license=license_a.key, name="cache-check")
    raw = capsys.readouterr().out.strip()
    client.logout()
    for path in ("balance", "transactions", "history.csv"):
        answer = client.get(
            f"/api/v1/licenses/{license_a.public_id}/{path}", HTTP_AUTHORIZATION=f"Bearer {raw}"
        )
        assert answer.status_code == 200, path
        assert "no-store" in answer.get("Cache-Control", ""), path
