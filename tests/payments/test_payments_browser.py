"""Paying by card in a real browser (Chromium, Playwright) against localstripe, whose own
Stripe.js stand-in the page loads under the CSP: alice saves card 4242 and buys $25, sees
her balance rise by exactly $25.000000 and downloads the receipt PDF; a declined card says
so and credits nothing; bob switches auto top-up on and his next usage tops up once."""

import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from billing.charges.services import UsageRecord, usage_record_batch
from billing.ledger.selectors import balance_get
from billing.models import LedgerEntry
from demo.accounts import ACME, DEMO_PASSWORD, GLOBEX, seed_demo_accounts
from payments.models import Payment
from payments.services.refunds import payment_refund_issue
from tests.bridge_license import billing_member
from tests.ledger import buy
from tests.payments.conftest import CARD_3DS, CARD_DECLINED_ON_ATTACH, CARD_OK
from tests.payments.helpers import save_card

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def shop(localstripe, live_server, celery_eager):
    """The demo licenses, Stripe on localstripe, its webhooks sent to this live server."""
    localstripe.register_webhook(
        f"{live_server.url}/payments/stripe/webhook/", name="browser-tests"
    )
    licenses = seed_demo_accounts()
    acme, globex = licenses[ACME.key], licenses[GLOBEX.key]
    buy(acme, "100", "opening-acme")
    buy(globex, "0.60", "opening-globex")
    return acme, globex


def log_in(page, email: str) -> None:
    page.goto(reverse("accounts:login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def type_card(page, number: str) -> None:
    # localstripe's Stripe.js stand-in mounts plain inputs (real Stripe.js: an iframe).
    page.get_by_placeholder("number").fill(number)
    page.get_by_placeholder("exp_month").fill("12")
    page.get_by_placeholder("exp_year").fill("34")
    page.get_by_placeholder("cvc").fill("123")
    page.get_by_placeholder("postal_code").fill("10001")


def purchase_path(license) -> str:
    return reverse("dashboard:purchase", kwargs={"license_id": license.public_id})


def test_alice_saves_a_card_buys_25_dollars_and_downloads_the_receipt(new_page, shop, tmp_path):
    acme, _globex = shop
    before = balance_get(acme).balance
    page = new_page()
    log_in(page, "alice@acme.example")
    page.goto(purchase_path(acme))
    expect(page.get_by_role("button", name="Pay $25.00")).to_be_visible()
    expect(page.locator("[data-balance-after]")).to_have_text("$125.000000")
    type_card(page, CARD_OK)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "payments-purchase.png"), full_page=True)
    page.get_by_role("button", name="Pay $25.00").click()
    expect(page.get_by_text("Payment received")).to_be_visible(timeout=15_000)
    after = balance_get(acme).balance
    assert after - before == Decimal("25.000000")
    expect(page.locator("[data-new-balance]")).to_have_text("$125.000000")
    page.screenshot(path=str(ARTIFACTS / "payments-paid.png"), full_page=True)
    [payment] = Payment.objects.for_license(acme)
    assert payment.card_last4 == "4242" and payment.ledger_entry is not None
    with page.expect_download() as download_info:
        page.locator("[data-receipt-pdf]").click()
    pdf = tmp_path / "receipt.pdf"
    download_info.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "60",
            "-singlefile",
            str(pdf),
            str(ARTIFACTS / "payments-receipt"),
        ],
        check=True,
    )
    # The purchase is in Recent Transactions with its receipt, and in the billing history.
    page.goto(reverse("dashboard:overview", kwargs={"license_id": acme.public_id}))
    row = page.locator("table.transactions tbody tr").filter(has_text="Card payment").first
    expect(row.locator(".type--purchase")).to_have_text("Purchase")
    expect(row.get_by_role("link", name="Receipt")).to_be_visible()
    assert page.csp_violations == [] and page.bad_responses == []
    # The webhook localstripe sends a second later changes nothing.
    page.wait_for_timeout(2500)
    assert LedgerEntry.objects.for_license(acme).filter(external_id__startswith="pi:").count() == 1


def test_a_declined_card_shows_a_clear_message_and_credits_nothing(new_page, shop):
    _acme, globex = shop
    page = new_page()
    log_in(page, "bob@globex.example")
    page.goto(purchase_path(globex))
    type_card(page, CARD_DECLINED_ON_ATTACH)
    page.get_by_role("button", name="Pay $25.00").click()
    expect(page.locator("[data-payment-error]")).to_contain_text(
        "Your card was declined. Nothing was charged.", timeout=15_000
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "payments-declined.png"), full_page=True)
    assert Payment.objects.for_license(globex).count() == 0
    assert balance_get(globex).balance == Decimal("0.600000")
    assert page.csp_violations == []


def test_bob_sets_auto_top_up_and_his_next_usage_tops_up_once(new_page, shop, localstripe):
    _acme, globex = shop
    bob = globex.memberships.get(user__email="bob@globex.example").user
    save_card(localstripe, globex, bob, CARD_OK)
    page = new_page()
    log_in(page, "bob@globex.example")
    page.goto(reverse("dashboard:auto_topup", kwargs={"license_id": globex.public_id}))
    page.get_by_label("Top up automatically").check()
    page.get_by_label("When my balance falls below").fill("1.00")
    page.get_by_label("Add", exact=True).fill("10.00")
    page.get_by_role("button", name="Save auto top-up").click()
    expect(page.get_by_text("Auto top-up settings saved.")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "payments-auto-topup.png"), full_page=True)
    mail.outbox.clear()
    # The next usage page of the sync: 1,000 images ($0.10).
    now = timezone.now()
    with transaction.atomic():
        usage_record_batch(
            license=globex,
            records=[
                UsageRecord(id="bob-next-page", occurred_at=now - timedelta(minutes=1), images=1000)
            ],
        )
    topups = list(Payment.objects.for_license(globex).filter(source="auto_topup"))
    assert len(topups) == 1 and topups[0].status == "succeeded"
    assert balance_get(globex).balance == Decimal("10.500000")
    assert [m.subject for m in mail.outbox if "Auto top-up" in m.subject] == [
        "Auto top-up: $10.00 added to Globex Labs"
    ]
    assert page.csp_violations == []


def test_3d_secure_is_finished_in_the_browser_and_credits_once(new_page, shop):
    acme, _globex = shop
    before = balance_get(acme).balance
    page = new_page()
    log_in(page, "alice@acme.example")
    page.goto(purchase_path(acme))
    page.get_by_label("$10.00").check()
    type_card(page, CARD_3DS)
    page.get_by_role("button", name="Pay $10.00").click()
    # Saving the card asks for authentication (localstripe's stand-in for the bank's page)...
    page.get_by_role("button", name="Complete authentication").click(timeout=15_000)
    # ...and so does the payment, on the payment's page (confirmCardPayment).
    expect(page.get_by_text("Your bank asks you to confirm")).to_be_visible(timeout=15_000)
    page.get_by_role("button", name="Complete authentication").click(timeout=15_000)
    expect(page.get_by_text("Payment received")).to_be_visible(timeout=15_000)
    assert balance_get(acme).balance - before == Decimal("10.000000")
    assert LedgerEntry.objects.for_license(acme).filter(external_id__startswith="pi:").count() == 1
    assert page.csp_violations == []


def test_alice_saves_billing_details_buys_25_dollars_and_gets_the_invoice_by_email(
    new_page, shop, tmp_path
):
    acme, _globex = shop
    page = new_page()
    log_in(page, "alice@acme.example")
    page.goto(purchase_path(acme))
    page.get_by_test_id("billing-details-link").click()
    page.get_by_label("Legal name").fill("Acme Robotics GmbH")
    page.get_by_label("Address").fill("Hauptstrasse 1\n10115 Berlin")
    page.get_by_label("Country").select_option("DE")
    page.get_by_label("Tax ID (VAT number)").fill("DE 1234")
    page.get_by_role("button", name="Save billing details").click()
    expect(
        page.get_by_text("Tax ID: a VAT number in Germany is DE followed by 9 digits")
    ).to_be_visible()
    page.get_by_label("Tax ID (VAT number)").fill("DE 123 456 789")
    page.get_by_role("button", name="Save billing details").click()
    expect(page.get_by_text("Billing details saved.")).to_be_visible()
    mail.outbox.clear()
    page.goto(purchase_path(acme))
    type_card(page, CARD_OK)
    page.get_by_role("button", name="Pay $25.00").click()
    expect(page.get_by_text("Payment received")).to_be_visible(timeout=15_000)
    [payment] = Payment.objects.for_license(acme)
    invoice = payment.ledger_entry.document
    for _ in range(50):  # emailed once the purchase's transaction has committed
        if any(invoice.number in m.subject for m in mail.outbox):
            break
        page.wait_for_timeout(100)
    [email] = [m for m in mail.outbox if invoice.number in m.subject]
    [(name, content, _)] = email.attachments
    pdf = tmp_path / name
    pdf.write_bytes(content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in (invoice.number, "Acme Robotics GmbH", "DE123456789", "$25.00", "Visa"):
        assert expected in text
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "70", "-singlefile", str(pdf), str(ARTIFACTS / "invoice")],
        check=True,
    )
    # Listed on the Documents page, linked from Billing history.
    page.goto(reverse("dashboard:billing_history", kwargs={"license_id": acme.public_id}))
    page.get_by_role("link", name="Invoices and credit notes").click()
    expect(page.get_by_test_id("documents")).to_contain_text(invoice.number)

    # The billing team refunds $10 of it: a credit note arrives, naming its invoice; the
    # invoice's PDF now names the credit note; Billing history lists both documents.
    mail.outbox.clear()
    payment_refund_issue(
        acting_user=billing_member(),
        purchase=payment.ledger_entry,
        amount=Decimal("10"),
        reason="ten dollars back",
        idempotency_key="browser-refund-10",
    )
    refund = LedgerEntry.objects.for_license(acme).get(refund_of=payment.ledger_entry)
    note = refund.document
    assert note.invoice_id == invoice.pk
    for _ in range(50):
        if any(note.number in m.subject for m in mail.outbox):
            break
        page.wait_for_timeout(100)
    [email] = [m for m in mail.outbox if note.number in m.subject]
    [(name, content, _)] = email.attachments
    (tmp_path / name).write_bytes(content)
    note_text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / name), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert invoice.number in note_text and "$10.00" in note_text
    page.goto(reverse("dashboard:billing_history", kwargs={"license_id": acme.public_id}))
    history = page.get_by_test_id("billing-history")
    expect(history.locator(f"tr[data-entry='{payment.ledger_entry.pk}']")).to_contain_text(
        invoice.number
    )
    refund_line = history.locator("tr[data-movement='purchase_refund']")
    expect(refund_line).to_contain_text(note.number)
    expect(refund_line).to_contain_text("-$10.000000")
    with page.expect_download() as download:
        history.get_by_role("link", name=invoice.number).click()
    invoice_pdf = tmp_path / "invoice-after-refund.pdf"
    download.value.save_as(invoice_pdf)
    invoice_text = subprocess.run(
        ["pdftotext", "-layout", str(invoice_pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert note.number in invoice_text
    page.screenshot(path=str(ARTIFACTS / "documents.png"), full_page=True)
    assert page.csp_violations == [] and page.bad_responses == []
