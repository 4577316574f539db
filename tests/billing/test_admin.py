"""The billing team's admin. Billing logins refund, credit and record purchases; Support
logins see everything and move no money; nobody edits the ledger; lists stay cheap."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEvent
from billing.models import LedgerEntry, Price
from tests.ledger import T0, assert_ledger_consistent, buy, record_usage, usage_entry
from tests.matching import search

pytestmark = pytest.mark.django_db

ADMIN = "/admin/billing"


@pytest.fixture
def charge(license_a):
    record_usage(license_a, "c1", completion_tokens=1_000_000)  # $1.000000
    return usage_entry(license_a, "c1", "ai_data_completion")


def refund_url(entry):
    return f"{ADMIN}/ledgerentry/{entry.pk}/refund/"


def form_key(response):
    return search(r'name="idempotency_key" value="([^"]+)"', response.content.decode()).group(1)


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- Support: sees, cannot move money ---------------------------------------------------


def test_support_sees_the_ledger_but_gets_no_refund_buttons(support_client, charge, license_a):
    listing = support_client.get(f"{ADMIN}/ledgerentry/")
    assert listing.status_code == 200
    assert "c1:ai_data_completion" in listing.content.decode()
    assert "Refund…" not in listing.content.decode()
    detail = support_client.get(f"{ADMIN}/ledgerentry/{charge.pk}/change/")
    assert detail.status_code == 200
    assert "Refund this charge" not in detail.content.decode()
    lic = support_client.get(f"/admin/accounts/license/{license_a.pk}/change/").content.decode()
    assert "Ledger entries" in lic
    assert "Record purchase" not in lic
    assert "Goodwill credit" not in lic


def test_support_cannot_refund_credit_or_record_a_purchase(support_client, charge, license_a):
    data = {"amount": "0.5", "reason": "trying", "idempotency_key": "k" * 16}
    for path in (
        refund_url(charge),
        f"{ADMIN}/ledgerentry/license/{license_a.pk}/goodwill/",
        f"{ADMIN}/ledgerentry/license/{license_a.pk}/purchase/",
    ):
        assert support_client.get(path).status_code == 403
        post = support_client.post(path, {**data, "external_id": "pay_support"})
        assert post.status_code == 403
    assert LedgerEntry.objects.exclude(kind="usage").count() == 0
    assert not AuditEvent.objects.filter(action__in=["refund.issue", "purchase.record"]).exists()


def test_supports_refusal_says_to_ask_a_billing_member(support_client, charge, client):
    """Issue 28: a Support login's 403 told it to "ask the license owner", a customer's
    word; a staff login is told who can do it: a Billing member (a superuser, to reopen)."""
    for path in (refund_url(charge), f"{ADMIN}/ledgerentry/reconciliation/close/?month=2025-06"):
        page = support_client.get(path)
        html = page.content.decode()
        assert page.status_code == 403
        assert "Billing member" in html and "license owner" not in html, path
    close = support_client.get(f"{ADMIN}/ledgerentry/reconciliation/close/?month=2025-06")
    assert "Closing a month is for the Billing team" in close.content.decode()
    reopen = support_client.post(
        f"{ADMIN}/ledgerentry/reconciliation/close/",
        {"month": "2025-06", "reopen": "1", "reason": "x"},
    )
    assert reopen.status_code == 403
    assert "for superusers only" in reopen.content.decode()


def test_nobody_adds_changes_or_deletes_entries_through_the_admin(root_client, charge):
    assert root_client.get(f"{ADMIN}/ledgerentry/add/").status_code == 403
    post = root_client.post(f"{ADMIN}/ledgerentry/{charge.pk}/change/", {"amount": "5"})
    assert post.status_code == 403
    assert root_client.get(f"{ADMIN}/ledgerentry/{charge.pk}/delete/").status_code == 403
    page = root_client.get(f"{ADMIN}/ledgerentry/").content.decode()
    assert "delete_selected" not in page
    assert LedgerEntry.objects.get(pk=charge.pk).amount == Decimal("-1.000000")


# --- Billing: refunds -------------------------------------------------------------------


def test_billing_refunds_a_charge_with_the_refundable_amount_as_default(
    billing_client, charge, license_a
):
    listing = billing_client.get(f"{ADMIN}/ledgerentry/").content.decode()
    assert refund_url(charge) in listing
    detail = billing_client.get(f"{ADMIN}/ledgerentry/{charge.pk}/change/").content.decode()
    assert "Refund this charge" in detail
    form = billing_client.get(refund_url(charge))
    assert form.status_code == 200
    assert 'value="1.000000"' in form.content.decode()
    response = billing_client.post(
        refund_url(charge),
        {"amount": "0.400000", "reason": "model timed out", "idempotency_key": form_key(form)},
    )
    assert response.status_code == 302
    refund = LedgerEntry.objects.get(kind="refund")
    assert (refund.amount, refund.refund_of_id, refund.reason, refund.created_by) == (
        Decimal("0.400000"),
        charge.pk,
        "model timed out",
        billing_client.user,
    )
    assert response["Location"].endswith(f"/ledgerentry/{refund.pk}/change/")
    audit = AuditEvent.objects.get(action="refund.issue")
    assert (audit.actor, audit.reason) == (billing_client.user, "model timed out")
    again = billing_client.get(refund_url(charge))
    assert 'value="0.600000"' in again.content.decode()
    assert_ledger_consistent(license_a)


def test_a_double_submitted_refund_form_records_one_refund(billing_client, charge):
    form = billing_client.get(refund_url(charge))
    data = {"amount": "1.000000", "reason": "double click", "idempotency_key": form_key(form)}
    first = billing_client.post(refund_url(charge), data)
    second = billing_client.post(refund_url(charge), data)
    assert first.status_code == second.status_code == 302
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    assert any("already recorded" in m for m in messages_of(second))
    assert AuditEvent.objects.filter(action="refund.issue").count() == 1


@pytest.mark.parametrize(
    ("amount", "reason", "field", "message"),
    [
        ("-1", "x", "amount", "greater than zero"),
        ("0", "x", "amount", "greater than zero"),
        ("0.1234567", "x", "amount", "at most 6 decimal places"),
        ("ten", "x", "amount", "not an amount"),
        ("1.000001", "x", "amount", "At most $1.000000"),
        ("0.5", "   ", "reason", "required"),
        ("", "x", "amount", "required"),
    ],
)
def test_bad_refund_input_names_the_field_and_saves_nothing(
    billing_client, charge, amount, reason, field, message
):
    form = billing_client.get(refund_url(charge))
    response = billing_client.post(
        refund_url(charge), {"amount": amount, "reason": reason, "idempotency_key": form_key(form)}
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert "Nothing was recorded" in response.content.decode()
    assert not LedgerEntry.objects.filter(kind="refund").exists()
    assert not AuditEvent.objects.filter(action="refund.issue").exists()


def test_a_damaged_form_without_its_key_records_nothing(billing_client, charge):
    response = billing_client.post(refund_url(charge), {"amount": "0.5", "reason": "x"})
    assert response.status_code == 200
    assert "idempotency_key" in response.context["form"].errors
    assert not LedgerEntry.objects.filter(kind="refund").exists()


def test_only_usage_charges_offer_a_refund(billing_client, license_a):
    purchase = buy(license_a, "5", "pay_1").entry
    response = billing_client.get(refund_url(purchase))
    assert response.status_code == 302
    assert messages_of(response) == ["Only a usage charge can be refunded."]
    assert billing_client.get(f"{ADMIN}/ledgerentry/999999/refund/").status_code == 404


def test_a_fully_refunded_charge_has_nothing_left(billing_client, charge, billing_user):
    from billing.refunds.services import refund_issue

    refund_issue(
        acting_user=billing_user,
        license=charge.license,
        amount=Decimal(1),
        reason="all",
        idempotency_key="all-of-it",
        refund_of=charge,
    )
    response = billing_client.get(refund_url(charge))
    assert response.status_code == 302
    assert messages_of(response) == ["Nothing is left to refund on this charge."]


# --- Billing: goodwill and purchases ----------------------------------------------------


def test_billing_credits_goodwill_from_the_license_page(billing_client, license_a):
    page = billing_client.get(f"/admin/accounts/license/{license_a.pk}/change/").content.decode()
    goodwill = f"{ADMIN}/ledgerentry/license/{license_a.pk}/goodwill/"
    assert goodwill in page
    form = billing_client.get(goodwill)
    response = billing_client.post(
        goodwill, {"amount": "5", "reason": "outage June 3", "idempotency_key": form_key(form)}
    )
    assert response.status_code == 302
    credit = LedgerEntry.objects.get(kind="credit")  # goodwill is its own type (issue 14)
    assert (credit.amount, credit.refund_of, credit.reason, credit.created_by) == (
        Decimal("5.000000"),
        None,
        "outage June 3",
        billing_client.user,
    )
    assert_ledger_consistent(license_a)


def test_billing_records_a_purchase_once_per_payment_reference(billing_client, license_a, settings):
    settings.CREDIT_APPROVAL_LIMIT = "5000"  # above it, tests/billing/test_credit_approval.py
    page = billing_client.get(f"/admin/accounts/license/{license_a.pk}/change/").content.decode()
    purchase = f"{ADMIN}/ledgerentry/license/{license_a.pk}/purchase/"
    assert purchase in page
    data = {"amount": "$1,250.00", "external_id": "INV-2025-0042", "description": "Invoice 42"}
    assert billing_client.post(purchase, data).status_code == 302
    assert billing_client.post(purchase, data).status_code == 302
    entry = LedgerEntry.objects.get(kind="purchase")
    assert (entry.amount, entry.external_id, entry.created_by) == (
        Decimal("1250.000000"),
        "INV-2025-0042",
        billing_client.user,
    )
    assert AuditEvent.objects.filter(action="purchase.record").count() == 1
    reused = billing_client.post(purchase, {**data, "amount": "99"})
    assert reused.status_code == 200
    assert "already used" in " ".join(reused.context["form"].errors["external_id"])


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount": "-3", "external_id": "p1"}, "amount"),
        ({"amount": "3.0000001", "external_id": "p1"}, "amount"),
        ({"amount": "1000000000000", "external_id": "p1"}, "amount"),
        ({"amount": "3", "external_id": ""}, "external_id"),
    ],
)
def test_bad_purchase_input_names_the_field(billing_client, license_a, data, field):
    response = billing_client.post(f"{ADMIN}/ledgerentry/license/{license_a.pk}/purchase/", data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not LedgerEntry.objects.exists()


# --- lists: searchable, filterable, cheap -----------------------------------------------


@pytest.fixture
def busy_ledger(license_a, license_b):
    for i in range(30):
        record_usage(license_a, f"a{i}", at=T0 + timedelta(days=i * 20), input_tokens=100 + i)
    buy(license_b, "7", "pay_b_unique", description="Bravo top-up")


def test_the_ledger_list_never_counts_the_whole_table(support_client, busy_ledger):
    with CaptureQueriesContext(connection) as queries:
        response = support_client.get(f"{ADMIN}/ledgerentry/")
    assert response.status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    counts = [s for s in sql if "COUNT(" in s.upper() and "billing_ledgerentry" in s]
    assert counts and all("LIMIT 10001" in s for s in counts), counts
    assert not [s for s in sql if "DISTINCT" in s.upper() and "DATE_TRUNC" in s.upper()]
    assert len(sql) <= 15


def test_the_ledger_list_searches_and_filters(support_client, busy_ledger, license_a, license_b):
    def listed(query):
        page = support_client.get(f"{ADMIN}/ledgerentry/?{query}").content.decode()
        return set(re.findall(r"(a\d+:ai_data|pay_b_unique)", page))

    assert listed("q=pay_b_unique") == {"pay_b_unique"}
    assert listed("q=BRAVO-000002") == {"pay_b_unique"}
    assert listed("q=Bravo+Secret") == {"pay_b_unique"}
    assert listed("q=top-up") == {"pay_b_unique"}
    assert listed(f"license__id__exact={license_b.pk}") == {"pay_b_unique"}
    assert listed("kind__exact=purchase") == {"pay_b_unique"}
    assert len(listed(f"license__id__exact={license_a.pk}&service__exact=ai_data")) == 30
    # T0 + 20 days × i: in 2025 are i = 0..10 (June 10 … Dec 27).
    assert len(listed("occurred_at__year=2025&kind__exact=usage")) == 11
    assert listed("occurred_at__year=2025&occurred_at__month=6&occurred_at__day=30") == {
        "a1:ai_data"
    }


def test_the_date_drill_down_offers_years_months_and_days(support_client, busy_ledger):
    page = support_client.get(f"{ADMIN}/ledgerentry/").content.decode()
    assert "occurred_at__year=2025" in page and "occurred_at__year=2026" in page
    months = support_client.get(f"{ADMIN}/ledgerentry/?occurred_at__year=2026").content.decode()
    assert "occurred_at__month=12" in months
    days = support_client.get(
        f"{ADMIN}/ledgerentry/?occurred_at__year=2026&occurred_at__month=2"
    ).content.decode()
    assert "occurred_at__day=28" in days and "occurred_at__day=29" not in days


def test_balances_and_rollups_are_visible_read_only(support_client, busy_ledger):
    for model in ("licensebalance", "dailyrollup"):
        assert support_client.get(f"{ADMIN}/{model}/").status_code == 200
        assert support_client.get(f"{ADMIN}/{model}/add/").status_code == 403


# --- prices: add-only, audited ----------------------------------------------------------


def price_data(**overrides):
    start = timezone.now() + timedelta(days=1)
    data = {
        "service": "ai_data",
        "unit_price": "0.0000005",
        "effective_from_0": start.strftime("%Y-%m-%d"),
        "effective_from_1": start.strftime("%H:%M:%S"),
    }
    return {**data, **overrides}


def test_a_new_price_is_added_as_a_new_row_and_audited(root_client):
    before = Price.objects.count()
    response = root_client.post(f"{ADMIN}/price/add/", price_data())
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Price.objects.count() == before + 1
    price = Price.objects.latest("created_at")
    assert (price.unit_price, price.created_by) == (Decimal("0.0000005"), root_client.user)
    assert AuditEvent.objects.filter(action="price.add", actor=root_client.user).count() == 1


def test_an_empty_start_means_now(root_client):
    response = root_client.post(
        f"{ADMIN}/price/add/", price_data(effective_from_0="", effective_from_1="")
    )
    assert response.status_code == 302
    price = Price.objects.latest("created_at")
    assert abs(price.effective_from - timezone.now()) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"effective_from_0": "2020-01-01", "effective_from_1": "00:00:00"}, "effective_from"),
        ({"unit_price": "-0.1"}, "unit_price"),
        ({"unit_price": "0.0000000000001"}, "unit_price"),
    ],
)
def test_a_bad_price_names_the_field_and_saves_nothing(root_client, overrides, field):
    before = Price.objects.count()
    response = root_client.post(f"{ADMIN}/price/add/", price_data(**overrides))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert Price.objects.count() == before


def test_prices_are_never_edited_or_deleted_in_the_admin(root_client, billing_client):
    price = Price.objects.filter(service="ai_data").first()
    assert price is not None  # the default prices come with the migrations
    page = root_client.get(f"{ADMIN}/price/{price.pk}/change/")
    assert page.status_code == 200
    assert 'name="unit_price"' not in page.content.decode()
    post = root_client.post(f"{ADMIN}/price/{price.pk}/change/", {"unit_price": "0"})
    assert post.status_code == 403
    assert root_client.get(f"{ADMIN}/price/{price.pk}/delete/").status_code == 403
    assert Price.objects.get(pk=price.pk).unit_price == Decimal("0.000000600000")


def test_billing_and_support_see_prices_but_do_not_set_them(support_client):
    assert support_client.get(f"{ADMIN}/price/").status_code == 200
    assert "per 1M tokens" in support_client.get(f"{ADMIN}/price/").content.decode()
    assert support_client.get(f"{ADMIN}/price/add/").status_code == 403
