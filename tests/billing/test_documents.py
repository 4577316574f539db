"""Invoices and credit notes: what a customer's accountant relies on. Every purchase has an
invoice numbered in a gap-free series, made out to the billing details saved before it (never
after), emailed with its PDF; every purchase refund a credit note linked to its invoice."""

import subprocess
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection, connections, transaction
from django.utils import timezone

from accounts.models import License, User
from billing.documents.details import billing_details_save
from billing.models import Document, LedgerEntry
from billing.purchases.refunds import purchase_refund_record
from billing.purchases.services import purchase_record
from portal.exceptions import ApplicationError
from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory

YEAR = timezone.localdate().year


def buy(license: License, amount: str = "25", ref: str = "pi:1") -> LedgerEntry:
    return purchase_record(license=license, amount=Decimal(amount), external_id=ref).entry


def invoice_of(entry: LedgerEntry) -> Document:
    return Document.objects.get(entry=entry)


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "document.pdf"
    path.write_bytes(data)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def owner_a(license_a: License) -> User:
    return MembershipFactory(
        license=license_a, user=UserFactory(email="olga@alpha.example"), role="owner"
    ).user


def test_each_purchase_gets_the_next_invoice_number_and_a_rolled_back_one_leaves_no_gap(
    license_a,
):
    first = invoice_of(buy(license_a, ref="pi:1"))
    with pytest.raises(RuntimeError), transaction.atomic():
        buy(license_a, ref="pi:2")
        raise RuntimeError("the purchase's transaction fails after its invoice was numbered")
    third = invoice_of(buy(license_a, ref="pi:3"))
    assert [first.number, third.number] == [f"INV-{YEAR}-000001", f"INV-{YEAR}-000002"]
    assert Document.objects.count() == 2
    # The same payment reported again is the same purchase: no second invoice.
    buy(license_a, ref="pi:3")
    assert Document.objects.count() == 2


def test_billing_details_appear_on_the_next_invoice_but_never_change_an_earlier_one(
    license_a, owner_a, tmp_path
):
    before = invoice_of(buy(license_a, ref="pi:1"))
    billing_details_save(
        acting_user=owner_a,
        license=license_a,
        legal_name="Alpha Corp GmbH",
        address="Hauptstr. 1\n10115 Berlin",
        country="DE",
        tax_id="de 123 456 789",
        po_number="PO-4711",
    )
    after = invoice_of(buy(license_a, ref="pi:2"))
    assert after.billed_to["legal_name"] == "Alpha Corp GmbH"
    assert after.billed_to["tax_id"] == "DE123456789"
    before.refresh_from_db()
    assert before.billed_to["legal_name"] == "" and before.billed_to["tax_id"] == ""
    from billing.documents.pdf import document_pdf

    old_text = pdf_text(document_pdf(before), tmp_path)
    assert "Alpha Corp GmbH" not in old_text and "DE123456789" not in old_text
    new_text = pdf_text(document_pdf(after), tmp_path)
    for expected in (after.number, "Alpha Corp GmbH", "10115 Berlin", "Germany", "DE123456789"):
        assert expected in new_text
    assert "PO-4711" in new_text and "$25.00" in new_text


@pytest.mark.parametrize(
    ("country", "tax_id"),
    [("DE", "DE12345678"), ("FR", "123456789"), ("GB", "GB12345"), ("NL", "NL123456789")],
)
def test_a_tax_id_in_the_wrong_format_for_its_country_is_refused_naming_the_field(
    license_a, owner_a, country, tax_id
):
    with pytest.raises(ApplicationError) as refused:
        billing_details_save(
            acting_user=owner_a,
            license=license_a,
            legal_name="Alpha",
            address="",
            country=country,
            tax_id=tax_id,
            po_number="",
        )
    assert refused.value.field == "tax_id"
    assert refused.value.message.startswith("Tax ID:")


def test_billing_details_changes_are_audited(license_a, owner_a):
    from accounts.models import AuditEvent

    billing_details_save(
        acting_user=owner_a,
        license=license_a,
        legal_name="Alpha Ltd",
        address="1 High St",
        country="GB",
        tax_id="GB123456789",
        po_number="",
    )
    event = AuditEvent.objects.get(action="billing_details.update")
    assert event.actor == owner_a and event.changes["tax_id"] == ["", "GB123456789"]


def test_the_invoice_pdf_shows_number_billed_to_tax_id_and_the_amount_in_cents(
    license_a, owner_a, tmp_path, settings
):
    settings.INVOICE_TAX_RATES = {"DE": "19"}
    billing_details_save(
        acting_user=owner_a,
        license=license_a,
        legal_name="Alpha Corp GmbH",
        address="Hauptstr. 1",
        country="DE",
        tax_id="DE123456789",
        po_number="",
    )
    invoice = invoice_of(buy(license_a, "25"))
    # Prices include tax: $25.00 paid is $21.01 net and $3.99 VAT at 19 %.
    assert (invoice.net_cents, invoice.tax_cents, invoice.total_cents) == (2101, 399, 2500)
    from billing.documents.pdf import document_pdf

    text = pdf_text(document_pdf(invoice), tmp_path)
    for expected in (invoice.number, "Alpha Corp GmbH", "DE123456789", "$25.00 USD"):
        assert expected in text
    assert "VAT 19%" in text and "$3.99" in text and "$25.000000" not in text
    assert f"({license_a.timezone})" in text  # the issue date says whose day it is


def test_a_purchase_refund_gets_a_credit_note_linked_both_ways_with_its_invoice(
    license_a, tmp_path
):
    purchase = buy(license_a, "25")
    invoice = invoice_of(purchase)
    refund = purchase_refund_record(
        license=license_a,
        purchase=purchase,
        amount=Decimal("10"),
        external_id="re:1",
        reason="Customer asked",
    ).entry
    note = Document.objects.get(entry=refund)
    assert note.kind == Document.Kind.CREDIT_NOTE and note.number == f"CN-{YEAR}-000001"
    assert note.invoice == invoice and list(invoice.credit_notes.all()) == [note]
    assert note.total_cents == 1000
    from billing.documents.pdf import document_pdf

    assert invoice.number in pdf_text(document_pdf(note), tmp_path)
    assert note.number in pdf_text(document_pdf(invoice), tmp_path)


def test_an_issued_document_is_emailed_after_commit_with_its_pdf(
    license_a, member_a, celery_eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as owed:
        entry = buy(license_a, "25")
    assert mail.outbox == []  # nothing is sent inside the purchase's transaction
    for callback in owed:
        callback()
    [email] = mail.outbox
    invoice = invoice_of(entry)
    assert invoice.number in email.subject and email.to == [member_a.email]
    [(name, content, mimetype)] = email.attachments
    assert name == f"{invoice.number}.pdf" and mimetype == "application/pdf"
    assert content.startswith(b"%PDF")
    invoice.refresh_from_db()
    assert invoice.emailed_at is not None
    from billing.documents.emails import document_email_send

    assert document_email_send(document_id=invoice.pk) is False  # once
    assert len(mail.outbox) == 1


def test_paid_credit_recorded_by_billing_gets_an_invoice(license_a, billing_user):
    from billing.credits.services import credit_grant_issue

    granted = credit_grant_issue(
        acting_user=billing_user,
        license=license_a,
        amount=Decimal("40"),
        kind="paid",
        reason="Bank transfer 2026-11",
        idempotency_key="k1",
    )
    invoice = invoice_of(granted.entry)  # type: ignore[arg-type]
    assert invoice.total_cents == 4000 and "billing team" in invoice.payment_method


@pytest.mark.django_db(transaction=True)
def test_two_purchases_at_the_same_instant_get_consecutive_numbers():
    licenses = [LicenseFactory(), LicenseFactory()]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def purchase(license: License, ref: str) -> None:
        try:
            start.wait(timeout=10)
            buy(license, "5", ref)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=purchase, args=(lic, f"pi:{i}")) for i, lic in enumerate(licenses)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    numbers = sorted(Document.objects.values_list("sequence", flat=True))
    assert numbers == [1, 2]
    connection.close()


def test_owners_save_billing_details_on_their_page_and_a_wrong_vat_number_names_the_field(
    client, license_a, owner_a
):
    client.force_login(owner_a)
    url = f"/l/{license_a.public_id}/billing-details/"
    form = {"legal_name": "Alpha GmbH", "address": "Berlin", "country": "DE", "po_number": ""}
    refused = client.post(url, {**form, "tax_id": "DE12"})
    assert refused.status_code == 200
    assert refused.context["form"].errors["tax_id"][0].startswith("Tax ID: a VAT number in Germany")
    assert client.post(url, {**form, "tax_id": "DE 123456789"}).status_code == 302
    assert "DE123456789" in client.get(url).content.decode()
    history = client.get(f"/l/{license_a.public_id}/payments/history/").content.decode()
    assert url in history and f"/l/{license_a.public_id}/documents/" in history


def test_a_member_who_is_not_an_owner_cannot_change_billing_details(client, license_a):
    member = MembershipFactory(license=license_a, role="member").user
    client.force_login(member)
    url = f"/l/{license_a.public_id}/billing-details/"
    assert client.post(url, {"legal_name": "Mine"}).status_code == 403
    assert not Document.objects.exists()


def test_documents_are_listed_and_downloaded_by_their_license_only(
    client, license_a, member_a, member_b, license_b, tmp_path
):
    invoice = invoice_of(buy(license_a, "25"))
    client.force_login(member_a)
    page = client.get(f"/l/{license_a.public_id}/documents/").content.decode()
    pdf_url = f"/l/{license_a.public_id}/documents/{invoice.number}.pdf"
    assert invoice.number in page and pdf_url in page
    pdf = client.get(pdf_url)
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert invoice.number in pdf_text(pdf.content, tmp_path)
    archive = client.get(f"/l/{license_a.public_id}/documents/{YEAR}.zip")
    import io
    import zipfile

    assert zipfile.ZipFile(io.BytesIO(archive.content)).namelist() == [f"{invoice.number}.pdf"]
    # Bravo's member, on Bravo's own pages, asking for Alpha's invoice: it does not exist.
    client.force_login(member_b)
    assert client.get(f"/l/{license_b.public_id}/documents/{invoice.number}.pdf").status_code == 404
    assert client.get(f"/l/{license_b.public_id}/documents/{YEAR}.zip").status_code == 404
    assert client.get(pdf_url).status_code == 404
    assert invoice.number not in client.get(f"/l/{license_b.public_id}/documents/").content.decode()


def test_the_documents_page_links_an_invoice_and_its_credit_note_both_ways(client_a, license_a):
    purchase = buy(license_a, "25")
    refund = purchase_refund_record(
        license=license_a, purchase=purchase, amount=Decimal("10"), external_id="re:1", reason="x"
    ).entry
    invoice, note = invoice_of(purchase), Document.objects.get(entry=refund)
    page = client_a.get(f"/l/{license_a.public_id}/documents/").content.decode()
    base = f"/l/{license_a.public_id}/documents/"
    assert f'Invoice <a href="{base}{invoice.number}.pdf">' in page
    assert f'Credit notes <a href="{base}{note.number}.pdf">' in page


def test_an_email_whose_hand_over_was_lost_is_handed_over_again(license_a, member_a, celery_eager):
    from datetime import timedelta

    from billing.tasks import send_owed_document_emails

    invoice = invoice_of(buy(license_a, "25"))  # its after-commit hand-over never ran
    assert send_owed_document_emails() == 0  # a minute's grace for the hand-over in flight
    Document.objects.filter(pk=invoice.pk).update(
        issued_at=invoice.issued_at - timedelta(minutes=5)
    )
    assert send_owed_document_emails() == 1
    [email] = mail.outbox
    assert invoice.number in email.subject
    assert send_owed_document_emails() == 0


def test_the_support_team_finds_a_document_in_the_admin_and_downloads_its_pdf(
    support_client, license_a
):
    invoice = invoice_of(buy(license_a, "25"))
    listing = support_client.get(f"/admin/billing/document/?q={invoice.number}")
    assert listing.status_code == 200 and invoice.number in listing.content.decode()
    pdf = support_client.get(f"/admin/billing/document/{invoice.pk}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert support_client.post(f"/admin/billing/document/{invoice.pk}/change/").status_code == 403
