"""The API's statement is the dashboard's statement is the billing team's reconciliation:
one computation (billing.statements.selectors over billing.reconciliation.report), in the license's months."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.money import format_money
from billing.reconciliation.report import reconciliation_month
from billing.statements.selectors import statement_get
from tests.api.conftest import bearer
from tests.ledger import buy, charge, record, refund, spend, usage_entry

pytestmark = pytest.mark.django_db


def test_api_statement_equals_the_dashboards_and_the_reconciliation(
    client, alice_license, alice, make_key
):
    tz = ZoneInfo(alice_license.timezone)
    may_end = datetime(2025, 6, 1, tzinfo=tz)
    buy(alice_license, "10.00", at=may_end - timedelta(days=3))
    charge(alice_license, record(may_end - timedelta(hours=2), images=3000, record_id="rec-may"))
    spend(alice_license, "1.20", at=may_end - timedelta(minutes=1))  # May, local time (UTC: June)
    spend(alice_license, "0.70", at=may_end + timedelta(minutes=1))  # June, local time
    refund(alice_license, usage_entry(alice_license, "rec-may", "ai_images"), "0.10", alice)
    refund(alice_license, None, "0.25", alice, reason="goodwill")  # a credit, no charge
    buy(alice_license, "2.50", at=may_end + timedelta(days=2))
    raw = make_key(alice_license)

    this_month = timezone.localtime(timezone.now(), tz).date().replace(day=1)
    answers = {}
    for month in (date(2025, 4, 1), date(2025, 5, 1), date(2025, 6, 1), this_month):
        answer = client.get(
            f"/api/v1/licenses/{alice_license.public_id}/statements/{month:%Y-%m}", **bearer(raw)
        )
        assert answer.status_code == 200
        api = answers[month] = answer.json()
        dashboard = statement_get(license=alice_license, month=month).figures
        rows = reconciliation_month(month=month, license=alice_license).rows
        staff = rows[0] if rows else dashboard  # April: nothing yet, no reconciliation row
        for name, field in (
            ("opening_balance", "opening"),
            ("purchases", "purchases"),
            ("credits", "credits"),
            ("usage", "usage"),
            ("refunds", "refunds"),
            ("closing_balance", "closing"),
        ):
            assert api[name] == f"{getattr(dashboard, field):f}" == f"{getattr(staff, field):f}"
        staff_entries = rows[0].month_entries if rows else 0
        assert api["transactions"] == dashboard.entries == staff_entries

        if month == date(2025, 5, 1):
            assert api["opening_balance"] == "0.000000"
            assert api["purchases"] == "10.000000" and api["usage"] == "1.500000"
            page = client_page(client, alice, alice_license, month)
            assert format_money(dashboard.closing) in page

    assert answers[date(2025, 6, 1)]["closing_balance"] == "10.300000"  # 10 − 1.50 − 0.70 + 2.50
    now = answers[this_month]  # the refund and the credit were made today
    assert (now["opening_balance"], now["refunds"], now["credits"]) == (
        "10.300000",
        "0.100000",
        "0.250000",
    )
    assert now["closing_balance"] == "10.650000" and now["to_date"] is True


def client_page(client, user, license, month):
    client.force_login(user)
    url = reverse(
        "dashboard:statement", kwargs={"license_id": license.public_id, "month": f"{month:%Y-%m}"}
    )
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()
