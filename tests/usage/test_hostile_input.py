"""Hostile strings through every form and from the upstream: each is refused with a clear
message or stored and shown inert (escaped in pages, neutralized in CSV), with nothing
half-saved and never a 500.

What is refused: anything a field cannot hold (too long, not an email or a date) and
characters nobody can see (NUL, tab or CR in one-line fields, RTL override, zero-width:
portal/text.py). What is kept: markup and formula prefixes, which are inert where shown.
"""

import csv
import io
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from accounts.models import AlertRecipient, AuditEvent, Domain, User
from billing.models import LedgerEntry
from tests.accounts.factories import LicenseFactory, UserFactory
from tests.conftest import staff_force_login
from tests.ledger import buy, record_usage, usage_entry
from tests.processes import profile_for
from usage.models import QuarantinedRecord
from usage.services.sync import usage_sync_license
from usage.simulator import Faults
from usage.upstream import upstream_summary

pytestmark = pytest.mark.django_db

HOSTILE = {
    "script": '<script>alert("x")</script>',
    "attribute": '"><img src=x onerror=alert(1)>',
    "formula_equals": '=HYPERLINK("http://evil.example","click")',
    "formula_plus": "+1+cmd|' /C calc'!A0",
    "formula_minus": "-2+3+cmd",
    "formula_at": "@SUM(1+1)",
    "tab": "\t=1+1",
    "carriage_return": "\r=1+1",
    "very_long": "A" * 5000,
    "rtl_override": "invoice\u202egnp.exe",
    "zero_width": "ad\u200bmin",
    "nul": "bad\x00value",
}
# Shown inert when stored; everything else is refused by a one-line text field.
KEPT = {"script", "attribute", "formula_equals", "formula_plus", "formula_minus", "formula_at"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

each_hostile = pytest.mark.parametrize("kind", list(HOSTILE))


def assert_inert(html: str, text: str) -> None:
    """The page holds no live markup from `text` (escaped, or not there at all)."""
    if "<" in text or '"' in text:
        assert text not in html


def has_errors(response) -> bool:
    """The form came back with a message on a field (ours or the admin's)."""
    html = response.content.decode()
    return response.status_code == 200 and any(
        mark in html for mark in ('class="errorlist', "errornote", 'class="field__error"')
    )


@pytest.fixture
def root(db):
    """A superuser's own client (customers use `client`)."""
    staff = Client()
    staff_force_login(
        staff, UserFactory(email="root@portal.example", is_staff=True, is_superuser=True)
    )
    return staff


# --- customer forms ------------------------------------------------------------------


@each_hostile
def test_login_and_password_reset_refuse_hostile_strings(client, db, kind):
    text = HOSTILE[kind]
    login = client.post("/accounts/login/", {"username": text, "password": text})
    assert login.status_code == 200
    assert "email" in login.content.decode().lower()
    assert_inert(login.content.decode(), text)
    reset = client.post("/accounts/password/reset/", {"email": text})
    assert reset.status_code == 200 and has_errors(reset)
    assert_inert(reset.content.decode(), text)
    assert mail.outbox == []


@each_hostile
def test_alert_settings_refuse_hostile_strings_and_save_nothing(client_a, license_a, kind):
    text = HOSTILE[kind]
    url = reverse("dashboard:alert_settings", kwargs={"license_id": license_a.public_id})
    response = client_a.post(url, {"low_balance_threshold": text, "extra_emails": text})
    assert has_errors(response)
    assert_inert(response.content.decode(), text)
    license_a.refresh_from_db()
    assert license_a.low_balance_threshold == Decimal("1.000000")
    assert not AlertRecipient.objects.for_license(license_a).exists()
    assert not AuditEvent.objects.filter(license=license_a).exists()


@each_hostile
def test_csv_filters_refuse_hostile_strings_with_a_message(client_a, license_a, kind):
    text = HOSTILE[kind]
    buy(license_a, "5.00", "pay-1")
    url = reverse("dashboard:history_csv", kwargs={"license_id": license_a.public_id})
    response = client_a.get(url, {"from": text, "to": text, "type": text}, follow=True)
    assert response.status_code == 200
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("Could not download the history:")
    assert_inert(response.content.decode(), text)


@each_hostile
def test_test_api_ignores_hostile_fields(start_simulator, client_a, license_a, kind):
    start_simulator(profiles=[profile_for(license_a, days=1)])
    url = reverse("dashboard:test_api", kwargs={"license_id": license_a.public_id})
    response = client_a.post(url, {"license": HOSTILE[kind], "url": HOSTILE[kind]})
    assert response.status_code == 200 and response.context["ping"].ok
    assert_inert(response.content.decode(), HOSTILE[kind])


# --- admin forms ----------------------------------------------------------------------


def license_form_data(client, license) -> dict:
    page = client.get(f"/admin/accounts/license/{license.pk}/change/")
    data = {
        "name": license.name, "key": license.key, "license_type": license.license_type,
        "status": license.status, "contact_email": license.contact_email,
        "member_since": license.member_since.isoformat(), "timezone": license.timezone,
        "low_balance_threshold": str(license.low_balance_threshold),
    }  # fmt: skip
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return data


@each_hostile
def test_admin_license_name_is_refused_or_shown_inert(root, kind):
    text = HOSTILE[kind]
    license = LicenseFactory(name="Plain Name Ltd")
    customer = UserFactory(email="cy@plain.example")
    license.memberships.create(user=customer, role="owner")
    response = root.post(
        f"/admin/accounts/license/{license.pk}/change/",
        {**license_form_data(root, license), "name": text},
    )
    license.refresh_from_db()
    if kind in KEPT:
        assert response.status_code == 302, response.content.decode()[:2000]
        assert license.name == text
        root.force_login(customer)
        page = root.get(reverse("dashboard:overview", kwargs={"license_id": license.public_id}))
        html = page.content.decode()
        assert page.status_code == 200 and escape(text) in html
        assert_inert(html, text)
    else:
        assert has_errors(response)
        assert license.name == "Plain Name Ltd"
        assert not AuditEvent.objects.filter(license=license).exists()


@each_hostile
def test_admin_domain_and_user_forms_refuse_or_keep_inert(root, kind):
    text = HOSTILE[kind]
    license = LicenseFactory()
    domain = root.post(
        "/admin/accounts/domain/add/", {"license": license.pk, "hostname": text, "is_primary": ""}
    )
    assert has_errors(domain) and not Domain.objects.exists()
    assert_inert(domain.content.decode(), text)

    added = root.post(
        "/admin/accounts/user/add/",
        {"email": text, "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9",
         "usable_password": "true", "memberships-TOTAL_FORMS": "0",
         "memberships-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert has_errors(added) and User.objects.count() == 1  # only root
    assert_inert(added.content.decode(), text)

    user = UserFactory(email="named@portal.example", full_name="Plain")
    page = root.get(f"/admin/accounts/user/{user.pk}/change/")
    form = page.context["adminform"].form
    data = {
        "email": user.email, "full_name": text, "is_active": "on",
        "last_login_0": "", "last_login_1": "",
        "date_joined_0": f"{user.date_joined:%Y-%m-%d}", "date_joined_1": f"{user.date_joined:%H:%M:%S}",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
    }  # fmt: skip
    assert "full_name" in form.fields
    changed = root.post(f"/admin/accounts/user/{user.pk}/change/", data)
    user.refresh_from_db()
    if kind in KEPT:
        assert changed.status_code == 302, changed.content.decode()[:3000]
        assert user.full_name == text
        listing = root.get("/admin/accounts/user/").content.decode()
        assert escape(text) in listing
        assert_inert(listing, text)
    else:
        assert has_errors(changed) and user.full_name == "Plain"


@each_hostile
def test_admin_money_forms_refuse_or_keep_inert_and_never_half_save(
    root, kind, client_a, license_a
):
    text = HOSTILE[kind]
    buy(license_a, "20.00", "pay-0")
    record_usage(license_a, "call-1", input_tokens=1_000_000)
    charge = usage_entry(license_a, "call-1")
    entries_before = LedgerEntry.objects.for_license(license_a).count()

    purchase = root.post(
        f"/admin/billing/ledgerentry/license/{license_a.pk}/purchase/",
        {"amount": "1.00", "external_id": text, "description": text},
    )
    refund = root.post(
        f"/admin/billing/ledgerentry/{charge.pk}/refund/",
        {"amount": "0.10", "reason": text, "idempotency_key": "hostilekey0001"},
    )
    goodwill = root.post(
        f"/admin/billing/ledgerentry/license/{license_a.pk}/goodwill/",
        {"amount": "0.20", "reason": text, "idempotency_key": "hostilekey0002"},
    )
    responses = (purchase, refund, goodwill)
    for response in responses:
        assert response.status_code in (200, 302)
        assert response.status_code == 302 or has_errors(response)
        assert_inert(response.content.decode(), text)
    saved = sum(r.status_code == 302 for r in responses)
    # Nothing half-saved: one entry and one audit row per form that went through, none else.
    assert LedgerEntry.objects.for_license(license_a).count() == entries_before + saved
    assert AuditEvent.objects.filter(license=license_a).count() == saved
    if kind in KEPT:
        assert saved == 3
        # The customer sees the description escaped and gets it neutralized in the CSV.
        html = client_a.get(
            reverse("dashboard:overview", kwargs={"license_id": license_a.public_id})
        ).content.decode()
        assert_inert(html, text)
        body = b"".join(
            client_a.get(
                reverse("dashboard:history_csv", kwargs={"license_id": license_a.public_id})
            ).streaming_content
        ).decode("utf-8-sig")
        # Columns: billing.history.export.HISTORY_HEADER (type: the movement's name, amount, description).
        [row] = [
            r for r in csv.reader(io.StringIO(body)) if r[2] == "purchase" and r[4] == "1.000000"
        ]
        description = row[8]
        assert not description.startswith(FORMULA_START)
        assert description.lstrip("'") == text
    elif kind in ("tab", "carriage_return"):
        # A one-line payment reference refuses them; a reason is multi-line text and keeps
        # them (shown escaped to staff only, never in the customer's CSV).
        assert purchase.status_code == 200 and saved == 2
    else:
        assert saved == 0


# --- upstream-supplied text -----------------------------------------------------------


def test_hostile_text_from_the_upstream_is_quarantined_or_shown_inert(
    start_simulator, license_a, client_a, root
):
    start_simulator(
        profiles=[profile_for(license_a, days=1)],
        faults=Faults(hostile_texts=tuple(HOSTILE.values())),
    )
    result = usage_sync_license(license=license_a, trigger="test")
    assert result.complete and result.records_charged > 0 and result.records_quarantined > 0
    summary = upstream_summary(license_key=license_a.key)
    # Every record is accounted for: charged, or quarantined with a readable reason.
    assert result.records_charged + result.records_quarantined == summary["records"]
    reasons = set(
        QuarantinedRecord.objects.for_license(license_a).values_list("reason_code", flat=True)
    )
    assert reasons == {QuarantinedRecord.Reason.BAD_TEXT}

    descriptions = set(
        LedgerEntry.objects.for_license(license_a).values_list("description", flat=True)
    )
    assert any(d.startswith("<script>") for d in descriptions)
    assert any(d.startswith("=HYPERLINK") for d in descriptions)
    html = client_a.get(
        reverse("dashboard:overview", kwargs={"license_id": license_a.public_id})
    ).content.decode()
    for kind in KEPT:
        assert_inert(html, HOSTILE[kind])
    body = b"".join(
        client_a.get(
            reverse("dashboard:history_csv", kwargs={"license_id": license_a.public_id})
        ).streaming_content
    ).decode()
    for row in list(csv.reader(io.StringIO(body)))[1:]:
        assert not row[6].startswith(FORMULA_START), row

    for path in ("/admin/usage/quarantinedrecord/", "/admin/billing/ledgerentry/"):
        page = root.get(path)
        assert page.status_code == 200
        for kind in KEPT:
            assert_inert(page.content.decode(), HOSTILE[kind])
