"""Issue 14's "Done when", in Chromium: every call findable and explained, a flagged charge
answered, every month provable. As the demo logins (alice: Acme, a year of history; bob:
Globex), with the history made through billing's services like the dashboard's browser tests.
"""

import io
import itertools
import re
import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from billing.ledger.usage import usage_record_id
from billing.models import ChargeFlag, LedgerEntry
from billing.reconciliation.report import reconciliation_month
from billing.refunds.services import refund_issue
from demo.accounts import DEMO_PASSWORD, DEMO_TOTP_SECRET
from tests.conftest import totp_code
from tests.dashboard.test_browser import ARTIFACTS, demo, log_in  # noqa: F401 - the fixture
from tests.ledger import LedgerFigures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def transactions_path(license) -> str:
    return reverse("dashboard:transactions", kwargs={"license_id": license.public_id})


def number(text: str) -> Decimal:
    """The number in a cell: "1,003 tokens" -> 1003, "× $0.000000600000" -> 0.0000006."""
    return Decimal(re.sub(r"[^\d.]", "", text))


def money_text(amount: Decimal) -> str:
    return f"${abs(amount):,.6f}"


def test_alice_pages_back_to_the_first_call_finds_one_and_its_page_adds_up(new_page, demo):  # noqa: F811
    acme = demo.acme
    entries = LedgerFigures(acme, timezone.now()).entries
    calls = {usage_record_id(e.external_id) for e in entries if e.kind == "usage"}
    others = [e for e in entries if e.kind != "usage"]
    first_call = min((e for e in entries if e.kind == "usage"), key=lambda e: (e.occurred_at, e.id))

    page = new_page()
    log_in(page, "alice@acme.example")
    page.get_by_role("link", name="All transactions").first.click()
    seen: list[str] = []
    rows = page.locator("[data-testid=all-transactions] tbody tr[data-entry]")
    while True:
        expect(rows.first).to_be_visible()
        seen.extend(rows.evaluate_all("rs => rs.map(r => r.dataset.entry)"))
        older = page.get_by_role("link", name="Older →")
        if older.count() == 0:
            break
        older.click()
    # One line per call and per money movement, each once, back to the very first call.
    assert len(seen) == len(set(seen)) == len(calls) + len(others)
    lines = LedgerEntry.objects.filter(pk__in=[int(pk) for pk in seen])
    assert usage_record_id(first_call.external_id) in {
        usage_record_id(e.external_id) for e in lines
    }
    assert LedgerEntry.objects.get(pk=int(seen[-1])).occurred_at <= first_call.occurred_at

    # Find a call by its request id; its page shows quantity × unit price, the rounding
    # and the charge, and the charges add up to the amount, digit for digit.
    call = next(
        e
        for e in sorted(entries, key=lambda e: e.occurred_at)
        if e.kind == "usage" and e.api_calls == 1 and e.request_id
        and LedgerEntry.objects.filter(
            license=acme, external_id__startswith=usage_record_id(e.external_id) + ":"
        ).count() >= 3
    )  # fmt: skip
    charges = list(
        LedgerEntry.objects.filter(
            license=acme, external_id__startswith=usage_record_id(call.external_id) + ":"
        )
    )
    page.get_by_role("textbox", name="Search").fill(call.request_id)
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(call.request_id)
    rows.first.locator(".tx-date a").click()
    expect(page.get_by_text(call.request_id).first).to_be_visible()
    total = -sum(c.amount for c in charges)
    expect(page.get_by_test_id("total")).to_have_text(money_text(total))
    table = page.locator("table", has=page.get_by_test_id("total"))
    for c in charges:
        row = table.locator("tbody tr", has_text=c.service).first
        texts = row.locator("td").all_inner_texts()  # service, quantity, × price, = exact, ±, $
        quantity, unit_price, exact, charged = (number(texts[i]) for i in (1, 2, 3, 5))
        assert quantity * unit_price == exact  # the arithmetic, as shown
        assert exact.quantize(Decimal("0.000001"), rounding="ROUND_HALF_UP") == charged
        assert charged == -c.amount
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "transaction-call.png", full_page=True)


def test_a_refund_links_to_its_charge_and_shows_its_reason(new_page, demo):  # noqa: F811
    from tests.accounts.factories import UserFactory

    acme = demo.acme
    charge = LedgerEntry.objects.filter(license=acme, kind="usage", amount__lt=0).last()
    assert charge is not None  # the demo's usage
    refund = refund_issue(
        acting_user=UserFactory(is_staff=True),
        license=acme,
        amount=-charge.amount,
        reason="The upstream timed out on our side.",
        idempotency_key="browser-refund-1",
        refund_of=charge,
    ).entry
    page = new_page()
    log_in(page, "alice@acme.example")
    page.goto(transactions_path(acme))
    line = page.locator(f"tr[data-entry='{refund.pk}']")
    expect(line).to_contain_text("Refund")
    line.locator(".tx-date a").click()
    expect(page.get_by_text("The upstream timed out on our side.")).to_be_visible()
    page.get_by_test_id("refunded-charge").click()
    expect(page.get_by_test_id("refund-link")).to_be_visible()
    expect(page.get_by_text("The upstream timed out on our side.")).to_be_visible()
    page.get_by_test_id("refund-link").click()
    expect(page).to_have_url(re.compile(f"/transactions/{refund.pk}/$"))


def test_bob_flags_a_charge_billing_refunds_half_bob_sees_it_resolved(
    new_page,
    demo,  # noqa: F811
    celery_eager,
):
    globex = demo.globex
    charge = LedgerEntry.objects.filter(license=globex, kind="usage", amount__lt=0).last()
    assert charge is not None  # the demo's usage
    page = new_page()
    log_in(page, "bob@globex.example")
    page.goto(reverse("dashboard:transaction", args=[globex.public_id, charge.pk]))
    page.get_by_label(re.compile("wrong", re.I)).fill("My log says 1,000 images, not 2,000.")
    page.get_by_role("button", name="Flag this charge").click()
    expect(page.get_by_test_id("flag-status")).to_contain_text("open, with the billing team")
    flag = ChargeFlag.objects.get()

    staff = new_page()
    staff.goto(reverse("admin:login"))
    staff.get_by_label("Email").fill("billing@portal.example")
    staff.get_by_label("Password").fill(DEMO_PASSWORD)
    staff.get_by_label("Authenticator code").fill(totp_code(DEMO_TOTP_SECRET))
    staff.get_by_role("button", name="Log in").click()
    staff.goto(reverse("admin:billing_chargeflag_changelist") + "?status__exact=open")
    expect(staff.locator("#result_list")).to_contain_text(globex.name)
    staff.locator("#result_list tbody a").first.click()
    expect(staff.get_by_text("My log says 1,000 images, not 2,000.").first).to_be_visible()
    staff.get_by_role("link", name="Refund this charge").first.click()
    half = (-charge.amount / 2).quantize(Decimal("0.000001"))
    staff.locator("input[name=amount]").fill(str(half))
    staff.locator("[name=reason]").fill("You are right: half of it is refunded.")
    staff.locator(".submit-row input[type=submit]").click()
    staff.wait_for_load_state()
    ARTIFACTS.mkdir(exist_ok=True)
    staff.screenshot(path=ARTIFACTS / "flag-refunded-admin.png", full_page=True)

    flag.refresh_from_db()
    assert flag.status == "resolved" and flag.refund is not None and flag.refund.amount == half
    page.reload()
    expect(page.get_by_test_id("flag-status")).to_contain_text("resolved")
    answer = page.get_by_test_id("flag-answer")
    expect(answer).to_contain_text("You are right: half of it is refunded.")
    expect(answer).to_contain_text(f"refund of ${half:,.6f}")
    answer.get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"/transactions/{flag.refund_id}/$"))
    assert [m.to for m in mail.outbox if "half of it" in m.body] == [["bob@globex.example"]]
    for month in {charge.occurred_at.date().replace(day=1), timezone.now().date().replace(day=1)}:
        assert reconciliation_month(month=month).ok


def test_last_months_statement_pdf_renders_and_closes_at_the_reconciliations_figure(
    new_page,
    demo,  # noqa: F811
    tmp_path,
):
    acme = demo.acme
    today = timezone.localtime(timezone.now(), acme.tzinfo).date()
    last = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    page = new_page()
    log_in(page, "alice@acme.example")
    page.goto(reverse("dashboard:statements", args=[acme.public_id]))
    page.get_by_role("link", name=f"{last:%B %Y}", exact=True).click()
    closing = page.get_by_test_id("closing").inner_text().strip()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as PDF").click()
    pdf = tmp_path / "statement.pdf"
    download.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    # Render it as a viewer would (poppler-utils, installed by make test-tools).
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(tmp_path / "p")], check=True)
    pages = sorted(tmp_path.glob("p*.png"))
    assert pages and pages[0].stat().st_size > 1000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(pages[0], ARTIFACTS / "statement-last-month.png")

    out = io.StringIO()
    call_command("reconcile_ledger", "--month", f"{last:%Y-%m}", "--license", acme.key, stdout=out)
    (line,) = [ln for ln in out.getvalue().splitlines() if ln.startswith(acme.key)]
    fields = line.split()
    assert fields[-1] == "ok"
    assert closing == f"${Decimal(fields[-2]):,.6f}"  # the closing balance, before the status
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert closing in text

    # Each month's closing is the next one's opening, month after month, on the pages.
    month_links = page.locator("main a", has_text=re.compile(r"^[A-Z][a-z]+ \d{4}$"))
    page.goto(reverse("dashboard:statements", args=[acme.public_id]))
    names = month_links.all_inner_texts()[:6]
    figures = []
    for name in names:
        page.goto(reverse("dashboard:statements", args=[acme.public_id]))
        page.get_by_role("link", name=name, exact=True).click()
        figures.append(
            (
                page.get_by_test_id("opening").inner_text().strip(),
                page.get_by_test_id("closing").inner_text().strip(),
            )
        )
    assert len(figures) == 6
    for newer, older in itertools.pairwise(figures):
        assert newer[0] == older[1]
