"""Reconciliation: per license and month (its own timezone), opening balance, purchases,
usage, refunds, closing balance, and every stored figure that is not the sum of its
entries. The billing team relies on `reconcile_ledger` failing loudly when anything differs."""

import csv
import io
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import License
from billing.models import ClosedMonth
from billing.reconciliation.report import reconciliation_month
from billing.refunds.services import refund_issue
from tests.accounts.factories import LicenseFactory
from tests.ledger import buy, record_usage, usage_entry
from tests.processes import child_env

pytestmark = pytest.mark.django_db
JUNE = datetime(2025, 6, 1).date()


def local(
    license: License, year: int, month: int, day: int, hour: int = 0, minute: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=license.tzinfo)


@pytest.fixture
def ny(db, billing_user):
    """A New York license with activity around the edges of June 2025 (local time)."""
    lic = LicenseFactory(name="=Evil Name", key="NY-000001", timezone="America/New_York")
    buy(lic, "10", "may", at=local(lic, 2025, 5, 31, 23, 30))  # 03:30 UTC June 1
    buy(lic, "20", "june", at=local(lic, 2025, 6, 1, 0, 30))
    record_usage(lic, "u1", at=local(lic, 2025, 6, 15, 12), completion_tokens=3_000_000)
    record_usage(lic, "u2", at=local(lic, 2025, 6, 30, 23, 59), input_tokens=1_000_000)
    record_usage(lic, "u3", at=local(lic, 2025, 7, 1, 0, 0), images=10)
    charge = usage_entry(lic, "u1", "ai_data_completion")
    refund_issue(
        acting_user=billing_user,
        license=lic,
        amount=Decimal("0.5"),
        reason="slow",
        idempotency_key="ref-1",
        refund_of=charge,
    )  # occurs now (after June): not in June's figures
    return lic


def row_for(report, license):
    (row,) = [r for r in report.rows if r.license_id == license.pk]
    return row


def test_a_month_is_reported_in_the_license_timezone(ny):
    report = reconciliation_month(month=JUNE)
    row = row_for(report, ny)
    assert row.opening == Decimal("10.000000")
    assert row.purchases == Decimal("20.000000")
    assert row.usage == Decimal("3.600000")  # $3 completion + $0.60 input, not July's images
    assert row.refunds == Decimal("0")
    assert row.closing == Decimal("26.400000")
    assert row.closing == row.opening + row.purchases - row.usage + row.refunds
    assert row.month_entries == 3
    # Stored balance is today's: it includes July's usage and the refund.
    assert row.stored_balance == row.ledger_balance == Decimal("26.899000")
    assert row.ok and report.ok


def test_licenses_without_entries_by_the_month_end_are_left_out(ny, license_a):
    buy(license_a, "5", "later", at=datetime(2025, 8, 1, tzinfo=license_a.tzinfo))
    keys = [r.key for r in reconciliation_month(month=JUNE).rows]
    assert keys == [ny.key]


def corrupt(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_stored_total_that_differs_is_reported(ny):
    corrupt(
        "UPDATE billing_licensebalance SET balance = balance + 0.000001, api_calls = api_calls + 1"
        " WHERE license_id = %s",
        [ny.pk],
    )
    row = row_for(reconciliation_month(month=JUNE), ny)
    assert not row.ok
    # The statement's opening and closing start from the stored balance: they are off too.
    assert {d.what for d in row.differences} == {
        "balance",
        "api_calls",
        "statement opening",
        "statement closing",
    }
    (balance,) = [d for d in row.differences if d.what == "balance"]
    assert (balance.stored, balance.ledger) == (Decimal("26.899001"), Decimal("26.899000"))


def test_a_wrong_lifetime_image_spending_is_reported(ny):
    """The dashboard's image/text breakdown reads LicenseBalance.images_spent: reconciliation
    holds it against the ledger like every other stored total."""
    assert row_for(reconciliation_month(month=JUNE), ny).ok
    corrupt(
        "UPDATE billing_licensebalance SET images_spent = images_spent + 1 WHERE license_id = %s",
        [ny.pk],
    )
    row = row_for(reconciliation_month(month=JUNE), ny)
    (diff,) = row.differences
    assert diff.what == "images_spent"
    assert (diff.stored, diff.ledger) == (Decimal("1.001000"), Decimal("0.001000"))


def test_a_rollup_that_differs_or_is_missing_is_reported(ny):
    corrupt(
        "UPDATE billing_dailyrollup SET amount = amount - 1 WHERE license_id = %s"
        " AND day = '2025-06-15'",
        [ny.pk],
    )
    corrupt("DELETE FROM billing_dailyrollup WHERE license_id = %s AND day = '2025-06-01'", [ny.pk])
    whats = [str(d) for d in row_for(reconciliation_month(month=JUNE), ny).differences]
    assert (
        "rollup 2025-06-15 usage ai_data_completion amount: stored -4.000000, ledger -3.000000"
        in whats
    )
    assert "rollup 2025-06-01 purchase amount: stored None, ledger 20.000000" in whats
    # The May 31 purchase rolled into May 31 (local), so June's check does not see it.
    assert not any("2025-05-31" in w for w in whats)


def test_the_command_exits_0_on_a_clean_ledger(ny, capsys):
    call_command("reconcile_ledger", "--month", "2025-06")
    out = capsys.readouterr().out
    assert "NY-000001" in out and "1 license(s) reconcile" in out


def test_the_command_fails_after_a_stored_total_is_corrupted(ny, capsys):
    corrupt("UPDATE billing_licensebalance SET total_spent = 0 WHERE license_id = %s", [ny.pk])
    with pytest.raises(CommandError, match="1 of 1 license") as exc:
        call_command("reconcile_ledger", "--month", "2025-06")
    assert exc.value.returncode == 1
    assert "total_spent: stored 0.000000, ledger 3.601000" in capsys.readouterr().out


def test_the_command_scopes_to_one_license_and_refuses_bad_arguments(ny, license_a):
    buy(license_a, "1", "p", at=datetime(2025, 6, 2, tzinfo=license_a.tzinfo))
    corrupt("UPDATE billing_licensebalance SET balance = 0 WHERE license_id = %s", [ny.pk])
    call_command("reconcile_ledger", "--month", "2025-06", "--license", license_a.key)
    for args in (["--month", "2025-6-1"], ["--month", "2025-06", "--license", "NOPE-0000"]):
        with pytest.raises(CommandError) as exc:
            call_command("reconcile_ledger", *args)
        assert exc.value.returncode == 2


def test_the_command_writes_the_report_as_csv(ny, tmp_path):
    path = tmp_path / "june.csv"
    call_command("reconcile_ledger", "--month", "2025-06", "--csv", str(path))
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert rows[0][:9] == [
        "month", "license_key", "license_name", "timezone", "opening_balance", "purchases",
        "usage", "refunds", "closing_balance",
    ]  # fmt: skip
    assert rows[1][:9] == [
        "2025-06", "NY-000001", "'=Evil Name", "America/New_York", "10.000000", "20.000000",
        "3.600000", "0.000000", "26.400000",
    ]  # fmt: skip
    assert rows[1][12] == "ok"


def test_the_admin_report_and_its_csv(support_client, ny):
    page = support_client.get("/admin/billing/ledgerentry/reconciliation/?month=2025-06")
    assert page.status_code == 200
    body = page.content.decode()
    assert "NY-000001" in body and "26.400000" in body and "reconcile" in body
    corrupt("UPDATE billing_licensebalance SET balance = 1 WHERE license_id = %s", [ny.pk])
    body = support_client.get(
        "/admin/billing/ledgerentry/reconciliation/?month=2025-06&only_differences=1"
    ).content.decode()
    assert "1 of 1 license differ" in body and "balance: stored 1.000000" in body
    download = support_client.get(
        "/admin/billing/ledgerentry/reconciliation/?month=2025-06&format=csv"
    )
    assert download["Content-Disposition"] == (
        'attachment; filename="ledger_reconciliation_2025-06.csv"'
    )
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows[1][12] == "DIFFERS"
    bad = support_client.get("/admin/billing/ledgerentry/reconciliation/?month=June")
    assert bad.status_code == 200
    assert "is not a month" in bad.content.decode()


def test_customers_and_anonymous_visitors_do_not_reach_the_report(client_a, client):
    # Issue 16: a signed-in customer gets a plain 404; an anonymous visitor the login.
    response = client_a.get("/admin/billing/ledgerentry/reconciliation/?month=2025-06")
    assert response.status_code == 404
    client_a.logout()
    response = client_a.get("/admin/billing/ledgerentry/reconciliation/?month=2025-06")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_manage_py_exits_non_zero_when_the_ledger_differs(license_a):
    """The real process exit status, as cron or CI sees it (data committed for the child)."""
    buy(license_a, "5", "p1", at=datetime(2025, 6, 2, tzinfo=license_a.tzinfo))

    def run():
        return subprocess.run(
            [sys.executable, "manage.py", "reconcile_ledger", "--month", "2025-06"],
            cwd=Path(settings.BASE_DIR),
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    clean = run()
    assert clean.returncode == 0, clean.stderr
    corrupt("UPDATE billing_licensebalance SET balance = 4 WHERE license_id = %s", [license_a.pk])
    broken = run()
    assert broken.returncode == 1
    assert "differ from the ledger" in broken.stderr


def test_a_wrong_count_of_purchases_credits_and_refunds_is_reported(ny):
    """Total Transactions reads LicenseBalance.money_entries (purchases, credits, refunds):
    the posting statement keeps it exact and reconciliation holds it against the entries."""
    row = row_for(reconciliation_month(month=JUNE), ny)
    assert row.ok
    corrupt(
        "UPDATE billing_licensebalance SET money_entries = money_entries - 1 WHERE license_id = %s",
        [ny.pk],
    )
    (diff,) = row_for(reconciliation_month(month=JUNE), ny).differences
    assert diff.what == "money_entries"
    assert (diff.stored, diff.ledger) == (2, 3)  # two purchases and the refund


def test_the_statement_states_the_reconciliations_figures_without_reading_the_history(
    ny, billing_user, django_assert_max_num_queries
):
    """billing.statements.figures (the statement page, its PDF and the API) reads rollups, the
    balance and the month's refunds without a service; reconciliation recomputes each figure
    from the ledger. With credits, a refund of a charge and a card refund in the month, the
    two agree to the micro-dollar, each month's closing is the next one's opening, and the
    statement's only ledger read is the small partial index's range."""
    from django.test.utils import CaptureQueriesContext

    from billing.models import LedgerEntry
    from billing.purchases.refunds import purchase_refund_record
    from billing.statements.figures import statement_month

    june_purchase = LedgerEntry.objects.get(license=ny, external_id="june")
    purchase_refund_record(
        license=ny, purchase=june_purchase, amount=Decimal("4"), external_id="re:1", reason="x"
    )
    refund_issue(
        acting_user=billing_user,
        license=ny,
        amount=Decimal("1.25"),
        reason="welcome",
        idempotency_key="credit-1",
    )
    # Both are dated now: this month's statement has them, June's and July's do not.
    months = [JUNE, datetime(2025, 7, 1).date(), timezone_now_month(ny)]
    previous = None
    for month in months:
        row = row_for(reconciliation_month(month=month), ny)
        assert row.ok, row.differences
        with CaptureQueriesContext(connection) as ctx, django_assert_max_num_queries(1):
            stated = statement_month(license=ny, month=month)
        (sql,) = [q["sql"] for q in ctx.captured_queries]
        assert sql.count("billing_ledgerentry") == 1 and "e.service = ''" in sql
        assert (stated.opening, stated.purchases, stated.credits, stated.usage) == (
            row.opening,
            row.purchases,
            row.credits,
            row.usage,
        )
        assert (stated.refunds, stated.closing, stated.entries) == (
            row.refunds,
            row.closing,
            row.month_entries,
        )
        assert stated.balances
        if previous is not None and previous.month.month % 12 + 1 == month.month:
            assert stated.opening == previous.closing
        previous = stated
    this_month = statement_month(license=ny, month=months[-1])
    assert this_month.credits == Decimal("1.250000")
    assert this_month.refunds == Decimal("0.500000") - Decimal("4")  # charge +, card −


def timezone_now_month(license):
    from django.utils import timezone

    return timezone.localtime(timezone.now(), license.tzinfo).date().replace(day=1)


# Months nobody can reconcile (issue 18: they answered 500, and the command exited 1,
# "differs", instead of 2): before the ledger could hold anything, past what dates hold,
# in the future, or not a month at all.
ABSURD_MONTHS = ["0000-01", "0001-01", "99999-01", "9999-12", "2999-01", "2025-13", "-2025-01"]


@pytest.mark.parametrize("month", ABSURD_MONTHS)
def test_an_absurd_month_on_the_admin_report_is_a_message(support_client, ny, month):
    for extra in ("", "&format=csv"):
        page = support_client.get(
            f"/admin/billing/ledgerentry/reconciliation/?month={month}{extra}"
        )
        assert page.status_code == 200
        assert page["Content-Type"].startswith("text/html")
        body = page.content.decode()
        assert "errornote" in body and "NY-000001" not in body


@pytest.mark.parametrize("month", ABSURD_MONTHS)
def test_an_absurd_month_is_a_bad_argument_for_the_command(ny, month):
    with pytest.raises(CommandError) as exc:
        call_command("reconcile_ledger", f"--month={month}")
    assert exc.value.returncode == 2


def test_an_absurd_month_on_closing_is_a_message(billing_client, ny):
    for month in ABSURD_MONTHS:
        response = billing_client.post(
            "/admin/billing/ledgerentry/reconciliation/close/", {"month": month}, follow=True
        )
        assert response.status_code == 200, month
    assert not ClosedMonth.objects.exists()
