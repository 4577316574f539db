"""The customer pages end to end: log in, request, read what the customer reads."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import License
from billing.models import LedgerEntry, Price
from tests.accounts.factories import DomainFactory, LicenseFactory, MembershipFactory
from tests.ledger import buy, charge, record
from tests.matching import search
from usage.models import SyncState

PAGES = ("dashboard:overview", "dashboard:reports", "dashboard:help", "dashboard:purchase")


def url(name: str, license: License) -> str:
    return reverse(name, kwargs={"license_id": license.public_id})


def without_csrf(html: bytes) -> bytes:
    """The page but its CSRF tokens, which are masked afresh on every response."""
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"", html)


def text_of(html: str) -> str:
    """The page's visible words, tags stripped and spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES)
def test_pages_send_anonymous_visitors_to_the_login_page(client, license_a, page):
    response = client.get(url(page, license_a))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES)
def test_another_license_is_not_found_and_leaks_nothing(client_a, license_b, page):
    buy(license_b, "123.45", at=datetime(2025, 1, 1, tzinfo=UTC))
    response = client_a.get(url(page, license_b))
    assert response.status_code == 404
    assert b"Bravo" not in response.content
    assert b"123.45" not in response.content


@pytest.mark.django_db
def test_the_overview_lists_this_licenses_domains_only_primary_first(
    client_a, member_a, license_a, license_b
):
    # Ann is a member of both: the domains come with her memberships, one license's only.
    MembershipFactory(license=license_b, user=member_a)
    DomainFactory(license=license_a, hostname="alpha.example")
    DomainFactory(license=license_a, hostname="www.alpha.example", is_primary=True)
    DomainFactory(license=license_b, hostname="bravo.example", is_primary=True)
    text = text_of(client_a.get(url("dashboard:overview", license_a)).content.decode())
    assert "www.alpha.example, alpha.example" in text
    assert "bravo.example" not in text
    text = text_of(client_a.get(url("dashboard:overview", license_b)).content.decode())
    assert "bravo.example" in text and "www.alpha.example" not in text


@pytest.mark.django_db
def test_dashboard_shows_every_section_of_the_guide(client_a, license_a):
    DomainFactory(license=license_a, hostname="alpha.example", is_primary=True)
    buy(license_a, "25.00", at=datetime(2025, 1, 1, tzinfo=UTC))
    response = client_a.get(url("dashboard:overview", license_a))
    assert response.status_code == 200
    text = text_of(response.content.decode())
    for heading in (
        "Account Overview",
        "Current Balance & Usage Statistics",
        "Estimated Usage Remaining",
        "Cost Per Usage",
        "Recent Transaction History",
        "Usage Analytics",
        "Service Breakdown",
        "Monthly Usage Trend",
        "Daily Usage Trend",
        "Quick Actions",
    ):
        assert heading in text.replace("&amp;", "&"), heading
    for label in (
        "Total Purchased", "Total Spent", "API Calls Made", "Tokens Used", "Images Processed",
        "Credits Used", "Last Updated", "Total Transactions", "Average per Transaction",
        "Image Processing", "AI Text Processing", "Purchase Credits",
    ):  # fmt: skip
        assert label in text, label
    assert license_a.contact_email in text
    assert "alpha.example" in text
    assert "Standard" in text
    nav = text_of(response.content.decode().split('<nav class="nav"', 1)[1].split("</nav>")[0])
    assert "Overview" in nav and "Back to Reports" in nav and "Help" in nav
    assert "Refresh Data" in nav
    assert "Download History" in nav


@pytest.mark.django_db
def test_balance_is_green_at_the_threshold_and_red_below_with_a_warning(client_a, license_a):
    buy(license_a, "1.00", at=datetime(2025, 1, 1, tzinfo=UTC))
    html = client_a.get(url("dashboard:overview", license_a)).content.decode()
    assert re.search(r'class="balance__amount money positive"[^>]*>\$1\.000000<', html)
    assert "Click here to purchase credits" not in html

    charge(license_a, record(datetime(2025, 1, 2, tzinfo=UTC), images=1))  # $0.0001
    html = client_a.get(url("dashboard:overview", license_a)).content.decode()
    assert re.search(r'class="balance__amount money negative"[^>]*>\$0\.999900<', html)
    warning = html.split('class="low-balance"', 1)[1].split("</div>", 1)[0]
    assert 'role="alert"' in html
    assert "Click here to purchase credits" in warning
    assert f'href="{url("dashboard:purchase", license_a)}"' in warning


@pytest.mark.django_db
def test_transaction_rows_read_like_the_guide(client_a, license_a):
    license_a.timezone = "America/New_York"
    license_a.save()
    long_description = "/v1/chat/completions?model=large-context&stream=true&user=team-42"
    with time_machine.travel(datetime(2025, 7, 1, 12, tzinfo=UTC), tick=False):
        card = buy(license_a, "10", "pi:rows", at=datetime(2025, 6, 30, 12, tzinfo=UTC)).entry
        charge(
            license_a,
            record(
                datetime(2025, 6, 30, 18, 30, tzinfo=UTC),  # 14:30 EDT
                input_tokens=1_234_567,
                endpoint=long_description,
            ),
        )
        html = client_a.get(url("dashboard:overview", license_a)).content.decode()
    rows = html.split('<table class="transactions">', 1)[1].split("</table>", 1)[0]
    usage_row, purchase_row = re.findall(r"<tr>.*?</tr>", rows.split("<tbody>")[1], re.S)
    assert ">Jun 30, 14:30<" in usage_row
    assert 'class="type type--usage">Usage<' in usage_row
    assert "ai_data" in usage_row
    assert re.search(
        r'class="tx-amount num money negative">.*\$0\.740740<', usage_row
    )  # no minus sign
    assert ">1,234,567<" in usage_row
    description = LedgerEntry.objects.for_license(license_a).get(kind="usage").description
    assert len(description) > 50
    assert f'title="{description}"' in usage_row.replace("&amp;", "&")
    shown = search(r'<span aria-hidden="true">(.*?)</span>', usage_row).group(1)
    assert len(shown.replace("&amp;", "&")) == 50 and shown.endswith("…")
    assert ">Jun 30, 08:00<" in purchase_row
    assert 'class="type type--purchase">Purchase<' in purchase_row
    assert re.search(r'class="tx-amount num money positive">.*\$10\.000000<', purchase_row)
    # Each row opens its transaction, and a card purchase its receipt.
    usage = LedgerEntry.objects.for_license(license_a).get(kind="usage")
    for row, entry in ((usage_row, usage), (purchase_row, card)):
        kwargs = {"license_id": license_a.public_id, "entry_id": entry.pk}
        assert f'<a href="{reverse("dashboard:transaction", kwargs=kwargs)}">' in row
    receipt = reverse(
        "dashboard:receipt", kwargs={"license_id": license_a.public_id, "entry_id": card.pk}
    )
    assert f'href="{receipt}">Receipt</a>' in purchase_row and "Receipt" not in usage_row


@pytest.mark.django_db
def test_last_updated_is_the_last_successful_sync_in_the_license_timezone(client_a, license_a):
    license_a.timezone = "Europe/Berlin"
    license_a.save()
    html = client_a.get(url("dashboard:overview", license_a)).content.decode()
    assert "Not synced yet" in html
    SyncState.objects.create(
        license=license_a, last_success_at=datetime(2025, 6, 30, 12, 30, tzinfo=UTC)
    )
    html = client_a.get(url("dashboard:overview", license_a)).content.decode()
    assert "Jun 30, 2025, 14:30 CEST" in html


@pytest.mark.django_db
def test_a_new_license_gets_zeros_empty_charts_and_a_friendly_hint(client_a, license_a):
    response = client_a.get(url("dashboard:overview", license_a))
    assert response.status_code == 200
    text = text_of(response.content.decode())
    assert "Welcome! Your dashboard is ready." in text
    assert "No transactions yet." in text
    assert "No usage in the last 30 days" in text
    assert "No usage in the last 12 months yet." in text
    assert "$0.000000" in text


@pytest.mark.django_db
def test_a_suspended_license_still_sees_its_data_with_a_notice(client_a, license_a):
    license_a.status = License.Status.SUSPENDED
    license_a.save()
    response = client_a.get(url("dashboard:overview", license_a))
    assert response.status_code == 200
    assert b"This license is suspended." in response.content


def _entries(license: License, n: int, now: datetime) -> None:
    """n ledger entries in one batch (n−1 usage calls over 400 days and a purchase)."""
    buy(license, "1000", at=now - timedelta(days=401))
    step = timedelta(days=400) / n
    charge(license, *[record(now - step * i, input_tokens=1_000 + i) for i in range(n - 1)])


@pytest.mark.django_db
def test_the_dashboard_costs_the_same_few_queries_for_10_or_10000_entries(
    client_a, license_a, license_b, django_assert_max_num_queries
):
    from tests.accounts.factories import MembershipFactory

    member_a = license_a.memberships.get().user
    MembershipFactory(license=license_b, user=member_a)
    now = datetime(2025, 9, 15, 12, tzinfo=UTC)
    counts = {}
    with time_machine.travel(now, tick=False):
        _entries(license_a, 10, now)
        _entries(license_b, 10_000, now)
        assert LedgerEntry.objects.for_license(license_b).count() == 10_000
        for license in (license_a, license_b):
            client_a.get(url("dashboard:overview", license))  # warm (and renew) the session
            caches["dashboard"].clear()  # the sections drawn, not kept (render_cache)
            # the session with its login, license, role, domains, balance (with the lifetime image
            # spending), prices, sync state and open credit grants (paid and promotional), the
            # rollups of the chart window, recent entries, the login's other licenses (the
            # switcher); the session was renewed within the minute, so it is not written again
            # (portal.middleware).
            with django_assert_max_num_queries(10), CaptureQueriesContext(connection) as ctx:
                response = client_a.get(url("dashboard:overview", license))
            assert response.status_code == 200
            counts[license.pk] = len(ctx.captured_queries)
            drawn = ctx.captured_queries
            # Drawn again unchanged: the sections come from the render cache, without the
            # rollups and the recent entries.
            with CaptureQueriesContext(connection) as ctx:
                again = client_a.get(url("dashboard:overview", license))
            assert without_csrf(again.content) == without_csrf(response.content)
            assert len(ctx.captured_queries) == counts[license.pk] - 2
            assert not [q for q in ctx.captured_queries if "billing_ledgerentry" in q["sql"]]
    assert counts[license_a.pk] == counts[license_b.pk]
    # Only the recent-transactions query touches the ledger, and it is limited to 100 rows.
    ledger = [q["sql"] for q in drawn if "billing_ledgerentry" in q["sql"]]
    assert len(ledger) == 1 and "LIMIT 100" in ledger[0]


@pytest.mark.django_db
def test_pages_carry_a_strict_content_security_policy_and_no_inline_code(client_a, license_a):
    buy(license_a, "5", at=datetime(2025, 1, 1, tzinfo=UTC))
    charge(license_a, record(datetime.now(UTC) - timedelta(days=1), images=10))
    for page in PAGES[:3]:
        response = client_a.get(url(page, license_a))
        policy = dict(
            part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
        )
        assert policy["default-src"] == "'self'"
        assert policy["script-src"] == "'self'"
        assert policy["style-src"] == "'self'"
        assert policy["img-src"] == "'self' data:"
        assert policy["frame-ancestors"] == "'none'"
        assert policy["form-action"] == "'self'"
        assert "unsafe" not in response["Content-Security-Policy"]
        html = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
        assert not re.search(r"\sstyle=", html), "inline style attribute"
        assert "<style" not in html
        assert not re.search(r"(src|href)=\"https?://", html), "external resource"


@pytest.mark.django_db
def test_the_admin_works_under_the_policy(admin_client):
    license = LicenseFactory()
    for path in (
        reverse("admin:index"),
        reverse("admin:accounts_license_changelist"),
        reverse("admin:accounts_license_change", args=[license.pk]),
    ):
        response = admin_client.get(path)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response["Content-Security-Policy"]
        html = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path


@pytest.mark.django_db
def test_purchase_credits_goes_to_the_payment_page_when_configured(client_a, license_a, settings):
    settings.PURCHASE_URL = "https://pay.example/credits"
    response = client_a.get(url("dashboard:purchase", license_a))
    assert response.status_code == 302
    assert response["Location"] == "https://pay.example/credits"


@pytest.mark.django_db
def test_purchase_credits_explains_how_to_buy_without_a_payment_page(client_a, license_a, settings):
    settings.PURCHASE_URL = ""
    settings.SUPPORT_EMAIL = "billing@provider.example"
    response = client_a.get(url("dashboard:purchase", license_a))
    assert response.status_code == 200
    text = text_of(response.content.decode())
    assert "How to buy credits" in text
    assert "billing@provider.example" in text
    assert license_a.key[-4:] in text
    assert license_a.key not in text  # only the last four characters of the key


@pytest.mark.django_db
def test_help_explains_each_section_with_the_prices_in_effect(client_a, license_a):
    text = text_of(client_a.get(url("dashboard:help", license_a)).content.decode())
    for section in (
        "Navigation", "Account Overview", "Estimated Usage Remaining", "Low Balance Warning",
        "Recent Transaction History", "Usage Analytics", "Monthly Usage Trend",
        "Daily Usage Trend", "Quick Actions", "Pricing", "Troubleshooting", "Best practices",
        "Getting support",
    ):  # fmt: skip
        assert section in text, section
    assert "$0.0001 per image ($1.00 per 10,000 images)" in text
    assert "$0.075 per 1M tokens" in text
    Price.objects.create(
        service="ai_data",
        unit_price=Decimal("0.0000005"),
        effective_from=datetime.now(UTC) - timedelta(minutes=1),
    )
    text = text_of(client_a.get(url("dashboard:help", license_a)).content.decode())
    assert "$0.50 per 1M tokens" in text and "$0.60 per 1M tokens" not in text


@pytest.mark.django_db
def test_reports_lists_the_dashboard_and_help(client_a, license_a):
    response = client_a.get(url("dashboard:reports", license_a))
    html = response.content.decode()
    assert f'href="{url("dashboard:overview", license_a)}"' in html
    assert f'href="{url("dashboard:help", license_a)}"' in html
    assert "Transaction history (CSV)" in html


# --- first screens -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_license_is_welcomed_with_purchase_credits_not_a_low_balance_alarm(
    client_a, license_a
):
    """No usage and no credit yet: $0 is below the $1.00 threshold, but nothing ran out."""
    html = client_a.get(url("dashboard:overview", license_a)).content.decode()
    assert "Welcome! Your dashboard is ready." in html
    assert 'data-testid="welcome-purchase">Purchase Credits</a>' in html
    assert 'class="low-balance"' not in html and "Click here to purchase credits" not in html
    assert "No credits yet" in html

    # Once the license has had money and uses it up, the warning is there.
    buy(license_a, "0.5")
    html = client_a.get(url("dashboard:overview", license_a)).content.decode()
    assert "Welcome! Your dashboard is ready." not in html
    assert 'class="low-balance"' in html and "Click here to purchase credits" in html


@pytest.mark.django_db
def test_a_login_with_several_licenses_sees_each_balance_and_low_state_and_a_switcher(
    client, license_a, license_b
):
    from tests.accounts.factories import MembershipFactory, UserFactory

    carol = UserFactory(email="carol@multi.example")
    MembershipFactory(license=license_a, user=carol)
    MembershipFactory(license=license_b, user=carol)
    third = LicenseFactory(name="Charlie New", key="CHARLIE-0003")
    MembershipFactory(license=third, user=carol)
    buy(license_a, "25")
    buy(license_b, "1")
    charge(license_b, record(datetime.now(UTC), images=5_000))  # $0.50 left, below $1.00
    client.force_login(carol)

    page = text_of(client.get(reverse("accounts:home")).content.decode())
    assert re.search(r"Alpha Corp .*Balance \$25\.000000 Healthy", page)
    assert re.search(r"Bravo Secret Inc .*Balance \$0\.500000 Low balance", page)
    assert re.search(r"Charlie New .*Balance \$0\.000000 No credits yet", page)
    assert text_of(client.get(reverse("accounts:license_list")).content.decode()) == page

    html = client.get(url("dashboard:overview", license_a)).content.decode()
    switcher = html[html.index('data-testid="license-switcher"') : html.index("</details>")]
    assert license_b.get_absolute_url() in switcher and third.get_absolute_url() in switcher
    assert license_a.get_absolute_url() not in switcher  # the one shown is not offered


@pytest.mark.django_db
def test_a_login_with_one_license_has_no_switcher(client_a, license_a, license_b):
    html = client_a.get(url("dashboard:overview", license_a)).content.decode()
    assert 'data-testid="license-switcher"' not in html
    assert license_b.get_absolute_url() not in html


@pytest.mark.django_db
def test_help_says_what_the_guide_says_about_cached_tokens_and_alerts(client, license_a):
    from tests.accounts.factories import MembershipFactory, UserFactory

    owner = UserFactory(email="owner@alpha.example")
    MembershipFactory(license=license_a, user=owner, role="owner")
    client.force_login(owner)
    html = client.get(url("dashboard:help", license_a)).content.decode()
    assert '<span data-testid="cached-saving">87.5%</span> cheaper than regular input' in html
    assert "(87.5% savings)" in html
    alerts = url("dashboard:alert_settings", license_a)
    assert f'<a href="{alerts}">Set up low balance alerts</a>' in html
    # The guide's "typical spending per API call" is beside it, for calls: a transaction is
    # a ledger line (issue 26), and a call may be several.
    assert (
        "Average per Transaction</dt><dd>Your typical spending per transaction: Total Spent ÷"
        " Total Transactions. Beside it, your typical spending per API call: Total Spent ÷ API"
        " Calls Made"
    ) in html
