"""Issue 14: every charge explained, every call findable, every month provable, and a
customer can flag a charge. Against the real database, through the real pages."""

import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from accounts.models import AuditEvent
from billing.charges.services import UsageRecord, usage_record_batch
from billing.history.transactions import transactions_page
from billing.models import BalanceAlert, ChargeFlag, LedgerEntry
from billing.reconciliation.report import license_month_get, reconciliation_month
from billing.refunds.services import refund_issue
from billing.statements.selectors import statement_get
from tests.ledger import buy
from tests.matching import search

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def calls(license, n, *, start=T0, prefix="r"):
    """n API calls, one a minute, each charged on 2-4 services."""
    records = [
        UsageRecord(
            id=f"{prefix}{i}",
            occurred_at=start + timedelta(minutes=i),
            input_tokens=1000 + i,
            cached_tokens=(i % 3) * 500,
            completion_tokens=200 + i,
            images=i % 2,
            request_id=f"req_{prefix}{i}",
            endpoint="/v1/chat/completions",
        )
        for i in range(n)
    ]
    usage_record_batch(license=license, records=records)


def page_url(license, query=""):
    return f"/l/{license.public_id}/transactions/{query}"


def test_all_transactions_pages_one_line_per_call_back_to_the_first(client_a, license_a):
    buy(license_a, "50", at=T0 - timedelta(days=1))
    calls(license_a, 130)
    # The selector: 50 a page, every call once, newest first, back to the first.
    seen, before = [], None
    while True:
        page = transactions_page(license_a, before=before)
        seen += [t.record_id or f"#{t.id}" for t in page.transactions]
        if page.older is None:
            break
        before = page.older
    assert seen == [f"r{i}" for i in range(129, -1, -1)] + [seen[-1]]
    assert seen[-1].startswith("#")  # the purchase, oldest
    # Each call's line is the sum of its charges.
    first = transactions_page(license_a).transactions[0]
    entries = LedgerEntry.objects.filter(external_id__startswith="r129:")
    assert first.amount == sum(e.amount for e in entries) and len(first.lines) == entries.count()
    # The page, through the links it prints, newest → oldest and back.
    body = client_a.get(page_url(license_a)).content.decode()
    assert body.count('data-entry="') == 50
    older = search(r'rel="next" href="\?([^"]+)"', body).group(1).replace("&amp;", "&")
    body2 = client_a.get(page_url(license_a, "?" + older)).content.decode()
    assert "req_r79" in body2 and "req_r80" not in body2
    oldest = client_a.get(page_url(license_a, "?oldest=1")).content.decode()
    assert "req_r0" in oldest and "Credit purchase" in oldest and 'rel="next"' not in oldest


def test_a_call_is_found_by_request_id_and_its_page_reproduces_the_amount(client_a, license_a):
    calls(license_a, 5)
    found = client_a.get(page_url(license_a, "?q=req_r3")).content.decode()
    entry_id = int(search(r'data-entry="(\d+)"', found).group(1))
    assert found.count('data-entry="') == 1
    charge = LedgerEntry.objects.get(pk=entry_id)
    assert charge.external_id.startswith("r3:")
    detail = client_a.get(page_url(license_a, f"{entry_id}/")).content.decode()
    total = -sum(e.amount for e in LedgerEntry.objects.filter(external_id__startswith="r3:"))
    assert "req_r3" in detail and f"${total}" in detail
    # input 1003 tokens × $0.0000006 = 0.0006018 → $0.000602 (the one rounding).
    assert "1,003 tokens" in detail and "$0.000000600000" in detail
    assert "= $0.000601800000" in detail and "$0.000602" in detail
    # A stranger's entry, or one that does not exist, is a 404.
    stranger = Client()
    from tests.accounts.factories import MembershipFactory, UserFactory

    stranger.force_login(MembershipFactory(user=UserFactory()).user)
    assert stranger.get(page_url(license_a, f"{entry_id}/")).status_code == 404


def _post_legacy_calls(license, n, *, at=T0):
    """Calls as they were recorded before the call columns (billing.0007): the request id,
    endpoint and status only in the description, the columns empty. The ledger is
    append-only, so such rows stay like this forever."""
    from django.db import transaction

    from billing.ledger.posting import EntryDraft, lock_balance, post_entries

    with transaction.atomic():
        balance = lock_balance(license)
        drafts = []
        for i in range(n):
            drafts.append(
                EntryDraft(
                    kind="usage",
                    service="ai_data",
                    amount=Decimal("-0.000600"),
                    tokens=1000,
                    api_calls=1,
                    description=f"/v1/chat/completions (req_old{i}){' [error]' if i % 2 else ''}",
                    occurred_at=at + timedelta(minutes=i),
                    external_id=f"old{i}:ai_data",
                )
            )
        post_entries(license=license, balance=balance, drafts=drafts)


def test_a_call_recorded_before_the_call_columns_is_found_by_its_request_id(client_a, license_a):
    """The request-id search missed old rows: their request id is only in the description
    (the column is empty, and the (license, request_id) index leaves them out). An
    expression index over the description finds them, as it finds new calls."""
    from django.db import connection

    from billing.history.transactions import LEGACY_REQUEST_ID_SQL

    _post_legacy_calls(license_a, 40, at=T0 - timedelta(days=400))
    calls(license_a, 300)  # newer history on top: the old calls are far down the pages
    for request_id in ("req_old7", "req_old8", "req_r250"):
        found = client_a.get(page_url(license_a, f"?q={request_id}")).content.decode()
        assert found.count('data-entry="') == 1, request_id
        entry_id = int(search(r'data-entry="(\d+)"', found).group(1))
        detail = client_a.get(page_url(license_a, f"{entry_id}/")).content.decode()
        assert request_id in detail
    assert (
        client_a.get(page_url(license_a, "?q=req_old")).content.decode().count('data-entry="') == 0
    )  # exact, not a prefix
    # The look-up is an index probe, not a scan of the license's history.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM billing_ledgerentry WHERE license_id = %s AND kind = 'usage'"  # noqa: S608
            f" AND api_calls = 1 AND request_id = '' AND {LEGACY_REQUEST_ID_SQL} = 'req_old7'",
            [license_a.pk],
        )
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "ledger_legacy_call_request_id" in plan, plan


def test_a_refund_and_its_charge_link_both_ways_with_the_reason(client_a, license_a, billing_user):
    calls(license_a, 2)
    charge = LedgerEntry.objects.get(external_id="r1:ai_data")
    refund = refund_issue(
        acting_user=billing_user,
        license=license_a,
        amount=Decimal("0.0003"),
        reason="Timed out on our side",
        idempotency_key="k1",
        refund_of=charge,
    ).entry
    page = client_a.get(page_url(license_a, f"{refund.pk}/")).content.decode()
    assert "Timed out on our side" in page and "The billing team" in page
    assert f"/transactions/{charge.pk}/" in page
    back = client_a.get(page_url(license_a, f"{charge.pk}/")).content.decode()
    assert f"/transactions/{refund.pk}/" in back and "Timed out on our side" in back
    # All transactions' line of the refund says what it refunds (a link) and why.
    listing = client_a.get(page_url(license_a)).content.decode()
    line = listing[listing.index(f'data-entry="{refund.pk}"') :].split("</tr>", 1)[0]
    assert f"/transactions/{charge.pk}/" in line and "Timed out on our side" in line


def test_goodwill_is_a_credit_in_the_ledger_the_list_and_the_reconciliation(
    client_a, license_a, billing_user
):
    credit = refund_issue(
        acting_user=billing_user,
        license=license_a,
        amount=Decimal("5"),
        reason="Slow API week",
        idempotency_key="gw",
    ).entry
    assert credit.kind == "credit" and credit.refund_of is None
    body = client_a.get(page_url(license_a)).content.decode()
    assert 'type--credit">Credit<' in body
    month = credit.occurred_at.date().replace(day=1)
    row = license_month_get(license=license_a, month=month)
    assert (row.credits, row.refunds, row.closing) == (Decimal("5"), Decimal("0"), Decimal("5"))
    assert reconciliation_month(month=month).ok


def test_bob_flags_billing_refunds_half_bob_sees_the_answer_and_gets_an_email(
    client_a, member_a, license_a, billing_client, billing_user, celery_eager,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    calls(license_a, 3)
    charge = LedgerEntry.objects.get(external_id="r2:ai_data")
    tx_url = page_url(license_a, f"{charge.pk}/")
    bob = Client()
    bob.force_login(member_a)
    response = bob.post(tx_url, {"message": "My log says 250 tokens, not 1002."})
    assert response.status_code == 302
    flag = ChargeFlag.objects.get()
    assert flag.status == "open" and flag.evidence["request_id"] == "req_r2"
    assert {c["service"] for c in flag.evidence["charges"]} >= {"ai_data", "ai_data_completion"}
    again = bob.post(tx_url, {"message": "again"})
    assert "already flagged" in again.content.decode() and ChargeFlag.objects.count() == 1
    # Billing sees it in the queue and refunds half of the input-token charge.
    queue = billing_client.get("/admin/billing/chargeflag/?status__exact=open").content.decode()
    assert "r2" in queue and license_a.name in queue
    flag_page = billing_client.get(f"/admin/billing/chargeflag/{flag.pk}/change/").content.decode()
    refund_url = f"/admin/billing/ledgerentry/{charge.pk}/refund/?flag={flag.pk}"
    assert refund_url.replace("?", "?") in flag_page.replace("&amp;", "&")
    form = billing_client.get(refund_url).content.decode()
    key = search(r'name="idempotency_key" value="([^"]+)"', form).group(1)
    assert f'name="flag" value="{flag.pk}"' in form
    half = (-charge.amount / 2).quantize(Decimal("0.000001"))
    with django_capture_on_commit_callbacks(execute=True):
        billing_client.post(
            refund_url,
            {"amount": str(half), "reason": "You are right: half refunded.", "idempotency_key": key, "flag": flag.pk},
        )  # fmt: skip
    flag.refresh_from_db()
    refund = flag.refund
    assert flag.status == "resolved" and refund is not None and refund.amount == half
    assert refund.refund_of_id == charge.pk and flag.notified_at is not None
    assert [m.to for m in mail.outbox] == [[member_a.email]]
    assert "half refunded" in mail.outbox[0].body
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {
        "flag.raise", "flag.resolve", "refund.issue",
    }  # fmt: skip
    page = bob.get(tx_url).content.decode()
    assert "resolved" in page and "You are right: half refunded." in page
    assert f"/transactions/{flag.refund_id}/" in page
    assert reconciliation_month(month=T0.date().replace(day=1)).ok
    assert reconciliation_month(month=refund.occurred_at.date().replace(day=1)).ok


def test_refunding_a_flagged_charge_from_its_ledger_page_answers_the_flag(
    member_a, license_a, billing_client, celery_eager, django_capture_on_commit_callbacks
):
    """Issue 28: billing refunded a flagged charge through the ledger entry's own Refund
    page (not the flag queue's link) and the customer's flag stayed "open, with the
    billing team". The page now says the refund answers the flag, and it does: resolved
    with the refund, the reason as the answer, the customer emailed."""
    calls(license_a, 2)
    charge = LedgerEntry.objects.get(external_id="r1:ai_data")
    tx_url = page_url(license_a, f"{charge.pk}/")
    bob = Client()
    bob.force_login(member_a)
    bob.post(tx_url, {"message": "I never sent this request."})
    flag = ChargeFlag.objects.get()
    assert "open, with the billing team" in bob.get(tx_url).content.decode()

    refund_url = f"/admin/billing/ledgerentry/{charge.pk}/refund/"  # no ?flag=
    form = billing_client.get(refund_url).content.decode()
    assert f"flagged by the customer (flag #{flag.pk})" in form
    assert "I never sent this request." in form
    key = search(r'name="idempotency_key" value="([^"]+)"', form).group(1)
    reason = "Our retry sent it twice: refunded in full."
    with django_capture_on_commit_callbacks(execute=True):
        response = billing_client.post(
            refund_url,
            {"amount": str(-charge.amount), "reason": reason, "idempotency_key": key},
            follow=True,
        )
    flag.refresh_from_db()
    refund = LedgerEntry.objects.get(refund_of=charge)
    assert flag.status == "resolved" and flag.refund == refund and flag.answer == reason
    assert flag.resolved_by == billing_client.user
    shown = [str(m) for m in response.context["messages"]]
    assert any(f"answers flag #{flag.pk}" in m for m in shown), shown
    assert [m.to for m in mail.outbox] == [[member_a.email]] and reason in mail.outbox[0].body
    page = bob.get(tx_url).content.decode()
    assert "open, with the billing team" not in page
    assert "resolved" in page and reason in page


def test_a_written_answer_resolves_a_flag_without_money(
    member_a, license_a, billing_client, celery_eager, django_capture_on_commit_callbacks
):
    calls(license_a, 1)
    charge = LedgerEntry.objects.get(external_id="r0:ai_data")
    bob = Client()
    bob.force_login(member_a)
    bob.post(page_url(license_a, f"{charge.pk}/"), {"message": "why?"})
    flag = ChargeFlag.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        billing_client.post(
            f"/admin/billing/chargeflag/{flag.pk}/answer/",
            {"answer": "Cached tokens are billed at $0.075 per 1M."},
        )
    flag.refresh_from_db()
    assert flag.status == "resolved" and flag.refund is None and len(mail.outbox) == 1
    assert LedgerEntry.objects.filter(kind="refund").count() == 0


def test_statements_match_the_reconciliation_and_chain_month_to_month(
    client_a, license_a, tmp_path
):
    license_a.member_since = T0.date() - timedelta(days=40)
    license_a.save()
    buy(license_a, "20", at=T0 - timedelta(days=35))
    calls(license_a, 10, start=T0 - timedelta(days=35), prefix="a")
    calls(license_a, 10, start=T0, prefix="b")
    may, june = statement_get(license=license_a, month=T0.date().replace(month=5, day=1)), None
    june = statement_get(license=license_a, month=T0.date().replace(day=1))
    assert may.figures.closing == june.figures.opening and may.balances and june.balances
    recon = reconciliation_month(month=june.month, license=license_a).rows[0]
    assert june.figures.closing == recon.closing
    assert sum(s.amount for s in june.usage_by_service) == june.figures.usage
    page = client_a.get(f"/l/{license_a.public_id}/statements/2025-06/").content.decode()
    assert f"${june.figures.closing}" in page
    pdf = client_a.get(f"/l/{license_a.public_id}/statements/2025-06.pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    path = tmp_path / "june.pdf"  # read as a customer would: poppler-utils (make test-tools)
    path.write_bytes(pdf.content)
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(path), str(tmp_path / "p")], check=True)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    assert f"${june.figures.closing}" in text
    assert client_a.get(f"/l/{license_a.public_id}/statements/1999-01/").status_code == 404


def test_a_backfill_of_history_sends_no_alert_but_new_usage_does(
    license_a, member_a, django_capture_on_commit_callbacks, celery_eager
):
    """The first sync replays months of usage before the purchases: no alert and no email
    for that (billing.alerts: nothing older than LicenseBalance.alerts_since, and the balance
    judged after the whole batch), even with the after-commit hand-over run as a worker
    would; new usage that crosses the line afterwards is announced."""
    with django_capture_on_commit_callbacks(execute=True):
        calls(license_a, 20, start=T0)  # long ago: the balance goes negative
        buy(license_a, "0.01", at=T0 - timedelta(days=1))
    assert BalanceAlert.objects.count() == 0
    # The purchase's invoice is emailed (billing/documents); no alert is.
    assert [m.subject for m in mail.outbox if not m.subject.startswith("Invoice ")] == []
    with django_capture_on_commit_callbacks(execute=True):
        usage_record_batch(
            license=license_a,
            records=[UsageRecord(id="now", occurred_at=datetime.now(UTC), images=5)],
        )
    assert list(BalanceAlert.objects.values_list("kind", flat=True)) == ["zero"]


def test_the_reconcile_command_and_statement_agree(license_a, capsys):
    buy(license_a, "3", at=T0)
    calls(license_a, 4)
    call_command("reconcile_ledger", "--month", "2025-06", "--license", license_a.key)
    out = capsys.readouterr().out
    closing = statement_get(license=license_a, month=T0.date().replace(day=1)).figures.closing
    assert str(closing) in out
