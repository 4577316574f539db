"""The staff console: finding a customer by anything they tell support, one page per
license that answers "why is my balance X?", the operations overview, and the month close
as the billing team works it."""

import re
import socket
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Membership, User
from accounts.otp import staff_otp_enrol
from accounts.roles import BILLING, SUPPORT
from api.events import webhook_event_record
from api.models import WebhookDelivery
from api.services import webhook_endpoint_create
from api.webhooks import webhook_delivery_attempt
from billing.charges.services import UsageRecord, usage_record_batch
from billing.closing.services import month_close
from billing.flags.services import flag_raise
from billing.models import ClosedMonth, LedgerEntry, LicenseBalance
from billing.refunds.services import refund_issue
from billing.statements.selectors import statement_get
from payments.models import Payment, PaymentAccount
from tests.accounts.factories import DomainFactory, LicenseFactory, MembershipFactory, UserFactory
from tests.conftest import staff_force_login, totp_code
from tests.ledger import buy, record_usage
from tests.matching import search

pytestmark = pytest.mark.django_db
# The license page's queries, whatever the license holds (ledger size, payments, flags,
# webhook endpoints): session and permissions, the form, and one query per panel.
LICENSE_PAGE_MAX_QUERIES = 30
# The overview's: session and permissions, the app list, one count per line, and the
# upstream feed's row (a license owed nothing is current as of its last complete read).
OVERVIEW_MAX_QUERIES = 19


def staff_client(client, *, email, group=None, superuser=False):
    user = UserFactory(email=email, is_staff=True, is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    staff_force_login(client, user)
    client.user = user
    return client


@pytest.fixture
def support(client):
    return staff_client(client, email="staff@portal.example", group=SUPPORT)


@pytest.fixture
def billing(client):
    return staff_client(client, email="billing@portal.example", group=BILLING)


@pytest.fixture
def carol_licenses(db):
    acme = LicenseFactory(
        name="Acme Analytics", key="ACME-PRO-0001", contact_email="a@acme.example"
    )
    globex = LicenseFactory(
        name="Globex Labs", key="GLOBEX-STD-0002", contact_email="b@globex.example"
    )
    LicenseFactory(name="Initech", key="INITECH-0003", contact_email="c@initech.example")
    carol = UserFactory(email="carol@multi.example")
    MembershipFactory(license=acme, user=carol)
    MembershipFactory(license=globex, user=carol, role=Membership.Role.OWNER)
    DomainFactory(license=acme, hostname="api.acme.example")
    return acme, globex


def found(client, term):
    response = client.get(reverse("admin:accounts_license_changelist"), {"q": term})
    assert response.status_code == 200
    return sorted(lic.name for lic in response.context["cl"].result_list)


def test_staff_search_finds_licenses_by_member_email_key_domain_and_contact(
    support, carol_licenses
):
    assert found(support, "carol@multi.example") == ["Acme Analytics", "Globex Labs"]
    assert found(support, "CAROL@multi") == ["Acme Analytics", "Globex Labs"]
    assert found(support, "STD-00") == ["Globex Labs"]  # part of a key
    assert found(support, "ACME-PRO-0001") == ["Acme Analytics"]
    assert found(support, "api.acme") == ["Acme Analytics"]
    assert found(support, "c@initech") == ["Initech"]
    assert found(support, "nobody@nowhere.example") == []


def test_the_membership_autocomplete_offers_customer_logins_to_those_who_may_add(
    client, carol_licenses
):
    UserFactory(email="carl@customer.example")
    UserFactory(email="carla@portal.example", is_staff=True)
    url = reverse("admin:autocomplete")
    params = {
        "term": "carl", "app_label": "accounts", "model_name": "membership", "field_name": "user",
    }  # fmt: skip
    staff_client(client, email="root@portal.example", superuser=True)
    emails = [r["text"] for r in client.get(url, params).json()["results"]]
    assert emails == ["carl@customer.example"]
    staff_client(client, email="sue@portal.example", group=SUPPORT)
    assert client.get(url, params).json()["results"] == []


@pytest.fixture
def acme(db):
    lic = LicenseFactory(name="Acme Analytics", key="ACME-PRO-0001", timezone="America/New_York")
    buy(lic, "25", "p-1", at=datetime(2025, 6, 1, 12, tzinfo=UTC))
    MembershipFactory(license=lic, user=UserFactory(email="alice@acme.example"))
    return lic


def add_usage(license, n, start=datetime(2025, 6, 2, tzinfo=UTC)):
    usage_record_batch(
        license=license,
        records=[
            UsageRecord(
                id=f"r{license.pk}-{i}-{n}", occurred_at=start + timedelta(minutes=37 * i),
                input_tokens=1234 + i, request_id=f"req-{i}", endpoint="/v1/chat",
            )
            for i in range(n)
        ],
    )  # fmt: skip


def running_balances(html):
    return re.findall(r"data-running>(-?[\d.]+)<", html)


def test_the_license_page_shows_balance_sync_and_the_running_balance_ledger(support, acme):
    add_usage(acme, 30)
    page = support.get(reverse("admin:accounts_license_change", args=[acme.pk]))
    html = page.content.decode()
    balance = LicenseBalance.objects.get(license=acme).balance
    assert page.status_code == 200
    assert f"data-balance>{balance}<" in html
    assert "Usage sync" in html and "never" in html  # no sync has run yet
    assert "alice@acme.example" in html
    running = running_balances(html)
    assert len(running) == 20 and Decimal(running[0]) == balance
    # Newest first: each running balance is the next (older) one plus the entry's amount.
    newest = list(LedgerEntry.objects.for_license(acme).order_by("-occurred_at", "-id")[:20])
    for i in range(19):
        assert Decimal(running[i]) == Decimal(running[i + 1]) + newest[i].amount
    assert "Token &amp; Credit Portal — staff" in html and "Django administration" not in html


def test_the_license_page_costs_the_same_for_a_long_history(
    support, acme, django_assert_max_num_queries
):
    add_usage(acme, 5)
    url = reverse("admin:accounts_license_change", args=[acme.pk])
    support.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        support.get(url)
    add_usage(acme, 400, start=datetime(2025, 7, 1, tzinfo=UTC))
    with django_assert_max_num_queries(len(small.captured_queries)):
        support.get(url)


def test_the_ledger_page_pages_back_and_finds_an_entry_first(support, acme):
    add_usage(acme, 120)
    url = reverse("admin:accounts_license_ledger", args=[acme.pk])
    first = support.get(url)
    html = first.content.decode()
    assert "America/New_York" in html and 'title="UTC ' in html
    assert (
        first.context["page"].rows[0].running_balance
        == LicenseBalance.objects.get(license=acme).balance
    )
    older = support.get(url + first.context["next_url"])
    assert older.status_code == 200
    rows = older.context["page"].rows
    assert rows[0].running_balance == first.context["page"].rows[-1].running_balance - (
        first.context["page"].rows[-1].amount
    )
    target = LedgerEntry.objects.for_license(acme).get(external_id=f"r{acme.pk}-7-120:ai_data")
    for term in (str(target.pk), target.external_id, f"r{acme.pk}-7-120"):
        hit = support.get(url, {"q": term})
        assert hit.context["page"].rows[0].id == target.pk, term
    missing = support.get(url, {"q": "no-such-thing"})
    assert "No entry of Acme Analytics" in missing.content.decode()


def test_a_stranger_license_ledger_is_not_reachable_by_customers(client_a, acme):
    assert client_a.get(reverse("admin:accounts_license_ledger", args=[acme.pk])).status_code == 404


def test_customers_opening_the_admin_get_a_plain_404(client_a):
    for url in ("/admin/", "/admin/login/", "/admin/billing/ledgerentry/"):
        assert client_a.get(url).status_code == 404, url


def test_staff_login_lands_on_the_operations_overview(client, acme):
    UserFactory(email="staff@portal.example", password="pw-123456789", is_staff=True).groups.add(
        Group.objects.get(name=SUPPORT)
    )
    response = client.post(
        reverse("accounts:login"),
        {"username": "staff@portal.example", "password": "pw-123456789"},
        follow=True,
    )
    # The password alone leads to the admin, which asks for the second factor first.
    assert response.redirect_chain[-1][0] == reverse("admin:login") + "?next=/admin/"
    staff = User.objects.get(email="staff@portal.example")
    staff_otp_enrol(acting_user=None, user=staff)
    response = client.post(
        reverse("admin:login") + "?next=/admin/",
        {
            "username": "staff@portal.example",
            "password": "pw-123456789",
            "otp_token": totp_code(staff),
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("admin:index")
    html = response.content.decode()
    assert "Operations overview" in html and "Licenses below their threshold" in html
    # Support does not see login lockouts and groups in the navigation.
    assert "Access attempts" not in html and ">Groups<" not in html


def test_the_overview_counts_link_to_their_lists(support, acme):
    acme.low_balance_threshold = Decimal("100")
    acme.save()
    response = support.get(reverse("admin:index"))
    items = {item.label: item for item in response.context["overview"]}
    below = items["Licenses below their threshold"]
    assert below.count == 1 and below.bad
    listed = support.get(below.url)
    assert [lic.name for lic in listed.context["cl"].result_list] == ["Acme Analytics"]
    assert items["Lagging syncs"].count == 0  # no sync state yet: nothing has ever synced
    for item in items.values():
        assert support.get(item.url).status_code == 200, item.label


def test_the_overview_counts_a_goodwill_credit_under_credits_not_refunds(support, acme, alice):
    billing = UserFactory(email="bill@portal.example", is_staff=True)
    billing.groups.add(Group.objects.get(name=BILLING))
    refund_issue(
        acting_user=billing,
        license=acme,
        amount=Decimal("5"),
        reason="Sorry for the outage",
        idempotency_key="goodwill-overview",
    )
    response = support.get(reverse("admin:index"))
    items = {item.label: item for item in response.context["overview"]}
    assert items["Credit today"].count == 1
    assert items["Refund today"].count == 0 and items["Refund of card purchase today"].count == 0
    assert "Refunds today" not in items
    assert [
        e.description for e in support.get(items["Credit today"].url).context["cl"].result_list
    ] == ["Goodwill credit"]
    assert f"in {settings.TIME_ZONE}" in response.content.decode()


# --- month close, as the billing team does it -------------------------------------------


def last_month() -> date:
    first = timezone.localdate().replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


def month_statement(license, month):
    """What the customer's statement of the month says (not the balance of today)."""
    s = statement_get(license=license, month=month)
    f = s.figures
    figures = (f.opening, f.purchases, f.credits, f.usage, f.refunds, f.closing, f.entries)
    return figures, s.usage_by_service


RECON = "admin:billing_ledgerentry_reconciliation"
CLOSE = "admin:billing_ledgerentry_month_close"


def test_billing_closes_last_month_and_a_late_record_leaves_it_unchanged(billing):
    lic = LicenseFactory(name="Acme Analytics", key="ACME-PRO-0001", timezone="America/New_York")
    month = last_month()
    inside = datetime(month.year, month.month, 10, 12, tzinfo=lic.tzinfo)
    buy(lic, "30", "p-1", at=inside)
    record_usage(lic, "u-1", at=inside + timedelta(days=1), input_tokens=2 * 10**6)
    text = f"{month:%Y-%m}"
    page = billing.get(reverse(RECON), {"month": text})
    html = page.content.decode()
    assert f"Close {month:%B %Y}" in html and "Total (1 license)" in html
    before = page.context["rows"][0]
    statement = month_statement(lic, month)
    response = close_confirmed(billing, text)
    assert f"{month:%B %Y} is closed" in response.content.decode()
    assert ClosedMonth.objects.filter(month=month).exists()
    assert AuditEvent.objects.get(action="month.close").actor == billing.user
    # A late upstream record dated in the closed month.
    late_at = datetime(month.year, month.month, 28, 9, tzinfo=lic.tzinfo)
    record_usage(lic, "late-1", at=late_at, completion_tokens=10**6)
    late = LedgerEntry.objects.for_license(lic).get(external_id="late-1:ai_data_completion")
    assert late.original_occurred_at == late_at and late.occurred_at.date() >= month.replace(day=28)
    after_page = billing.get(reverse(RECON), {"month": text})
    after = after_page.context["rows"][0]
    assert (after.opening, after.purchases, after.usage, after.refunds, after.closing) == (
        before.opening, before.purchases, before.usage, before.refunds, before.closing,
    )  # fmt: skip
    assert "Its figures are those of the close." in after_page.content.decode()
    assert month_statement(lic, month) == statement  # the customer's statement too


def close_confirmed(client, month_text: str):
    """Close a month as billing does: the confirmation page, then its Yes."""
    page = client.get(reverse(CLOSE), {"month": month_text}).content.decode()
    figures = search(r'name="figures" value="([0-9a-f]+)"', page).group(1)
    return client.post(
        reverse(CLOSE), {"month": month_text, "confirm": "1", "figures": figures}, follow=True
    )


def previous(month: date) -> date:
    return (month - timedelta(days=1)).replace(day=1)


def test_closing_a_month_asks_to_confirm_showing_what_it_freezes(billing):
    """Issue 28: "Close <month>" closed at one click. Now it asks first, on a page that
    shows what the close freezes: the month's figures (licenses, totals, entries), the
    earlier months it closes with it, and what happens to late entries. Nothing is closed
    until billing confirms, and then the figures kept are the ones shown."""
    lic = LicenseFactory(name="Acme Analytics", key="ACME-PRO-0001", timezone="America/New_York")
    month = last_month()
    three_ago = previous(previous(month))
    month_close(acting_user=billing.user, month=three_ago)  # an earlier close, months ago
    inside = datetime(month.year, month.month, 10, 12, tzinfo=lic.tzinfo)
    buy(lic, "30", "p-1", at=inside)
    record_usage(lic, "u-1", at=inside + timedelta(days=1), input_tokens=2 * 10**6)
    text = f"{month:%Y-%m}"
    recon = billing.get(reverse(RECON), {"month": text}).content.decode()
    assert f'<form method="get" action="{reverse(CLOSE)}">' in recon
    assert f"Close {month:%B %Y}…" in recon

    page = billing.get(reverse(CLOSE), {"month": text})
    html = page.content.decode()
    assert page.status_code == 200 and f"Close {month:%B %Y}?" in html
    assert "1 license" in html and "30.000000" in html and "1.200000" in html  # bought, used
    assert "28.800000" in html  # the closing balance kept
    assert f"{previous(month):%B %Y}" in html  # closed with it: it was still open
    assert "posted in the open month" in html
    assert ClosedMonth.objects.filter(month=month).count() == 0
    # Posting the month alone (a stale form, a script) only asks again.
    again = billing.post(reverse(CLOSE), {"month": text})
    assert f"Close {month:%B %Y}?" in again.content.decode()
    assert ClosedMonth.objects.filter(month=month).count() == 0

    figures = search(r'name="figures" value="([0-9a-f]+)"', html).group(1)
    done = billing.post(
        reverse(CLOSE), {"month": text, "confirm": "1", "figures": figures}, follow=True
    )
    assert f"{month:%B %Y} is closed" in done.content.decode()
    closed = ClosedMonth.objects.get(month=month)
    assert closed.figures["totals"]["purchases"] == "30.000000"
    assert closed.figures["totals"]["closing"] == "28.800000"


def test_a_close_confirmed_on_figures_that_changed_since_is_refused(billing):
    lic = LicenseFactory(name="Acme Analytics", key="ACME-PRO-0001", timezone="America/New_York")
    month = last_month()
    inside = datetime(month.year, month.month, 10, 12, tzinfo=lic.tzinfo)
    buy(lic, "30", "p-1", at=inside)
    text = f"{month:%Y-%m}"
    html = billing.get(reverse(CLOSE), {"month": text}).content.decode()
    figures = search(r'name="figures" value="([0-9a-f]+)"', html).group(1)
    # A late record dated in the month arrives while billing reads the page.
    record_usage(lic, "late-1", at=inside + timedelta(days=2), input_tokens=10**6)
    refused = billing.post(
        reverse(CLOSE), {"month": text, "confirm": "1", "figures": figures}, follow=True
    )
    assert "changed since" in refused.content.decode()
    assert not ClosedMonth.objects.exists()
    html = billing.get(reverse(CLOSE), {"month": text}).content.decode()
    assert "29.400000" in html  # the page shows the month as it is now
    figures = search(r'name="figures" value="([0-9a-f]+)"', html).group(1)
    billing.post(reverse(CLOSE), {"month": text, "confirm": "1", "figures": figures})
    assert ClosedMonth.objects.get(month=month).figures["totals"]["usage"] == "0.600000"


def test_support_cannot_close_and_billing_cannot_reopen(client, acme):
    month = last_month()
    support = staff_client(client, email="sue@portal.example", group=SUPPORT)
    assert support.post(reverse(CLOSE), {"month": f"{month:%Y-%m}"}).status_code == 403
    billing = staff_client(client, email="bill@portal.example", group=BILLING)
    close_confirmed(billing, f"{month:%Y-%m}")
    assert ClosedMonth.objects.filter(month=month).exists()
    refused = billing.post(
        reverse(CLOSE), {"month": f"{month:%Y-%m}", "reopen": "1", "reason": "x"}
    )
    assert refused.status_code == 403
    root = staff_client(client, email="root@portal.example", superuser=True)
    root.post(reverse(CLOSE), {"month": f"{month:%Y-%m}", "reopen": "1", "reason": "resent"})
    assert not ClosedMonth.objects.filter(month=month, reopened_at__isnull=True).exists()
    assert AuditEvent.objects.get(action="month.reopen").reason == "resent"


def test_a_future_month_is_refused_with_a_message(billing):
    future = (timezone.localdate().replace(day=1) + timedelta(days=40)).replace(day=1)
    page = billing.get(reverse(RECON), {"month": f"{future:%Y-%m}"})
    assert f"{future:%B %Y} is in the future" in page.content.decode()
    response = billing.post(reverse(CLOSE), {"month": f"{future:%Y-%m}"}, follow=True)
    assert "is in the future" in response.content.decode()
    assert not ClosedMonth.objects.exists()


# --- payments, auto top-up, flags and webhooks on the license page and the overview -----


def dead_url() -> str:
    """A loopback address nothing listens on: every delivery to it fails."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def failing_endpoint(license, owner, url=None):
    endpoint, _ = webhook_endpoint_create(
        acting_user=owner, license=license, url=url or dead_url(), events=["purchase.succeeded"]
    )
    webhook_event_record(event_type="purchase.succeeded", license=license, data={})
    for delivery in WebhookDelivery.objects.filter(endpoint=endpoint):
        assert webhook_delivery_attempt(delivery_id=delivery.pk) == "pending"  # retried later
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None
    return endpoint


def troubles(license, member, n):
    """n of each: open flags on charges, failed card payments, failing webhook endpoints;
    and an auto top-up rule that failed once."""
    for i in range(n):
        entry = record_usage(license, f"flagged-{n}-{i}", at=timezone.now(), input_tokens=10**5)
        charge = LedgerEntry.objects.for_license(license).get(
            external_id=f"flagged-{n}-{i}:ai_data"
        )
        assert entry is not None
        flag_raise(acting_user=member, license=license, entry_id=charge.pk, message=f"Twice? ({i})")
        Payment.objects.create(
            license=license, amount=Decimal("20"), amount_cents=2000,
            status=Payment.Status.FAILED, failure_message=f"Your card was declined ({i}).",
        )  # fmt: skip
        failing_endpoint(license, member)
    PaymentAccount.objects.update_or_create(
        license=license,
        defaults={
            "auto_topup_enabled": True, "auto_topup_threshold": Decimal("5"),
            "auto_topup_amount": Decimal("50"), "auto_topup_monthly_amount": Decimal("200"),
            "auto_topup_failures": 1,
        },
    )  # fmt: skip


@pytest.fixture
def alice(acme):
    return User.objects.get(email="alice@acme.example")


def test_the_license_page_shows_payments_auto_topup_open_flags_and_failing_webhooks(
    support, acme, alice
):
    troubles(acme, alice, 1)
    html = support.get(reverse("admin:accounts_license_change", args=[acme.pk])).content.decode()
    assert "Card payments" in html and "Your card was declined (0)." in html
    assert 'data-auto-topup="on"' in html and "add 50.000000 below 5.000000" in html
    assert "1 failure in a row" in html
    assert "1 open</a>" in html and "Twice? (0)" in html
    assert 'data-webhook="failing"' in html and "failing since" in html
    assert "last error: could not connect" in html


def test_the_license_page_says_when_there_is_nothing(support, acme):
    html = support.get(reverse("admin:accounts_license_change", args=[acme.pk])).content.decode()
    assert "no card payments" in html and 'data-auto-topup="off"' in html
    assert "0 open</a>" in html


def test_the_license_page_is_a_fixed_number_of_queries_whatever_it_holds(
    support, acme, alice, django_assert_max_num_queries
):
    url = reverse("admin:accounts_license_change", args=[acme.pk])
    troubles(acme, alice, 1)
    support.get(url)
    with django_assert_max_num_queries(LICENSE_PAGE_MAX_QUERIES):
        support.get(url)
    troubles(acme, alice, 4)
    add_usage(acme, 200, start=datetime(2025, 7, 1, tzinfo=UTC))
    with django_assert_max_num_queries(LICENSE_PAGE_MAX_QUERIES):
        html = support.get(url).content.decode()
    assert "5 open</a>" in html and html.count('data-webhook="failing"') == 5


def test_the_overview_counts_open_flags_and_failing_webhooks_and_lists_them(support, acme, alice):
    other = LicenseFactory(name="Globex Labs")
    troubles(acme, alice, 2)
    healthy, _ = webhook_endpoint_create(
        acting_user=alice, license=other, url="http://127.0.0.1:9/ok", events=["refund.issued"]
    )
    items = {i.label: i for i in support.get(reverse("admin:index")).context["overview"]}
    flags, hooks = items["Open charge flags"], items["Webhook endpoints failing"]
    assert (flags.count, flags.bad, hooks.count, hooks.bad) == (2, True, 2, True)
    listed = support.get(flags.url).context["cl"].result_list
    assert {f.status for f in listed} == {"open"} and len(listed) == 2
    listed = support.get(hooks.url).context["cl"].result_list
    assert len(listed) == 2 and healthy not in listed
    assert all(e.license == acme for e in listed)
    # The webhook list never shows an endpoint's signing secret.
    page = support.get(reverse("admin:api_webhookendpoint_change", args=[listed[0].pk]))
    assert page.status_code == 200 and listed[0].secret not in page.content.decode()


def test_the_license_page_offers_no_view_on_site_into_the_customer_dashboard(support, acme):
    # The dashboard is a 404 for staff (no membership); the license page is their view.
    assert support.get(acme.get_absolute_url()).status_code == 404
    html = support.get(reverse("admin:accounts_license_change", args=[acme.pk])).content.decode()
    assert "View on site" not in html and acme.get_absolute_url() not in html


def test_the_overview_is_a_fixed_number_of_queries(
    support, acme, alice, django_assert_max_num_queries
):
    support.get(reverse("admin:index"))
    with django_assert_max_num_queries(OVERVIEW_MAX_QUERIES):
        support.get(reverse("admin:index"))
    troubles(acme, alice, 3)
    add_usage(acme, 50, start=timezone.now() - timedelta(hours=2))
    with django_assert_max_num_queries(OVERVIEW_MAX_QUERIES):
        support.get(reverse("admin:index"))
