"""The dashboard's render cache (dashboard/render_cache.py) never shows stale money: whatever
changes what a section shows — a new entry, a refund, a late entry after a month closed, the
alert threshold, the local day, the timezone, a price coming into effect, a new deploy —
the next request shows it. Fragments are never shared between licenses, nor the parts of
the page that belong to the viewer; with the cache empty, absent or down, pages still work.

The clock is frozen in most tests, so a posting leaves LicenseBalance.updated_at as it was:
what changes the version is the entry count the posting adds in its own transaction.
"""

import logging
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
from accounts.services import license_save
from billing.closing.services import month_close
from billing.models import Service
from billing.prices.services import price_add
from dashboard.render_cache import cache_key, dashboard_sections
from dashboard.selectors.basis import dashboard_basis
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.ledger import buy, charge, record, refund, usage_entry
from tests.matching import search
from usage.models import SyncState

pytestmark = pytest.mark.django_db
NOW = datetime(2025, 9, 15, 16, 0, tzinfo=UTC)  # noon in New York


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def page(client, license: License) -> str:
    response = client.get(reverse("dashboard:overview", kwargs={"license_id": license.public_id}))
    assert response.status_code == 200
    return response.content.decode()


def balance(html: str) -> str:
    return search(r'data-testid="balance">([^<]*)<', html)[1]


def today_bar(html: str) -> str:
    return search(r'class="bar [^"]*bar--today[^"]*"[^>]*data-day="([^"]+)"', html)[1]


def kept(license: License):
    """What the cache holds for the license: (version, sections) or None."""
    return caches["dashboard"].get(cache_key(license.pk))


def ledger_queries(client, license: License) -> int:
    """Queries on the ledger for one dashboard: 1 when drawn, 0 when kept."""
    with CaptureQueriesContext(connection) as ctx:
        page(client, license)
    return sum("billing_ledgerentry" in q["sql"] for q in ctx.captured_queries)


def test_a_new_entry_shows_on_the_very_next_request(client_a, license_a, frozen):
    buy(license_a, "25.00", at=NOW - timedelta(days=1))
    assert balance(page(client_a, license_a)) == "$25.000000"
    assert kept(license_a) is not None
    assert ledger_queries(client_a, license_a) == 0  # unchanged: kept

    charge(license_a, record(NOW - timedelta(hours=1), images=1000, record_id="img-1"))
    html = page(client_a, license_a)
    assert balance(html) == "$24.900000"
    assert 'data-testid="images">1,000<' in html
    assert ">1,000<" in html.split('id="transactions-title"', 1)[1]  # the new row

    # The sync's replay of the same record posts nothing: the page stays as it was.
    charge(license_a, record(NOW - timedelta(hours=1), images=1000, record_id="img-1"))
    assert ledger_queries(client_a, license_a) == 0
    assert balance(page(client_a, license_a)) == "$24.900000"


def test_a_refund_shows_on_the_next_request(client_a, license_a, billing_user, frozen):
    buy(license_a, "25.00", at=NOW - timedelta(days=2))
    charge(license_a, record(NOW - timedelta(days=1), images=50_000, record_id="big"))
    assert balance(page(client_a, license_a)) == "$20.000000"
    refund(license_a, usage_entry(license_a, "big", Service.AI_IMAGES), "2.00", billing_user)
    html = page(client_a, license_a)
    assert balance(html) == "$22.000000"
    assert "+ $2.000000 refunded" in html


def test_a_late_entry_after_the_month_closed_shows_in_the_open_month(
    client_a, license_a, billing_user
):
    license_a.timezone = "America/New_York"
    license_a.save()
    with time_machine.travel(datetime(2025, 7, 10, 16, tzinfo=UTC), tick=False):
        buy(license_a, "50.00", at=datetime(2025, 6, 5, 16, tzinfo=UTC))
        month_close(acting_user=billing_user, month=datetime(2025, 6, 1).date())
        assert balance(page(client_a, license_a)) == "$50.000000"
        # Dated June, which is closed: posted now, in July, and on the page at once.
        charge(license_a, record(datetime(2025, 6, 30, 20, tzinfo=UTC), images=10_000))
        html = page(client_a, license_a)
    assert balance(html) == "$49.000000"
    assert "in closed June 2025; posted in the open month" in html
    assert "Jul 10, 12:00" in html  # the row is dated when it was posted, in New York


def test_a_new_alert_threshold_shows_at_once(client, license_a, frozen):
    owner = MembershipFactory(license=license_a, user=UserFactory(email="own@alpha.example"))
    client.force_login(owner.user)
    buy(license_a, "5.00", at=NOW - timedelta(days=1))
    html = page(client, license_a)
    assert 'class="low-balance"' not in html
    assert "at or above your $1.00 alert threshold" in html
    response = client.post(
        reverse("dashboard:alert_settings", kwargs={"license_id": license_a.public_id}),
        {"low_balance_threshold": "10", "alert_members": [str(owner.pk)], "extra_emails": ""},
    )
    assert response.status_code == 302
    html = page(client, license_a)
    assert 'class="low-balance"' in html
    assert "Below your $10.00 alert threshold" in html


def test_midnight_in_the_license_timezone_moves_today_on_the_charts(client_a, license_a):
    license_a.timezone = "America/New_York"
    license_a.save()
    evening = datetime(2025, 9, 16, 3, 50, tzinfo=UTC)  # Sep 15, 23:50 in New York
    with time_machine.travel(evening, tick=False):
        buy(license_a, "10.00", at=evening - timedelta(days=3))
        charge(license_a, record(evening - timedelta(minutes=5), images=100))
        html = page(client_a, license_a)
        assert today_bar(html) == "2025-09-15"
    # Nothing posted since, but it is a new day in New York: yesterday's usage moves left.
    with time_machine.travel(evening + timedelta(minutes=20), tick=False):
        html = page(client_a, license_a)
    assert today_bar(html) == "2025-09-16"
    assert 'aria-label="Sep 15: $0.01"' in html  # 100 images: $0.010000, exact


def test_a_new_timezone_shows_every_time_in_it(client_a, license_a, frozen):
    license_a.timezone = "UTC"
    license_a.save()
    buy(license_a, "10.00", at=datetime(2025, 6, 30, 12, 0, tzinfo=UTC))
    assert ">Jun 30, 12:00<" in page(client_a, license_a)
    license_a.timezone = "Europe/Berlin"
    license_save(acting_user=None, license=license_a)
    html = page(client_a, license_a)
    assert ">Jun 30, 14:00<" in html
    assert "Days, months and times are in Europe/Berlin" in html


def test_a_price_coming_into_effect_changes_the_estimates(client_a, license_a, billing_user):
    with time_machine.travel(NOW, tick=False):
        buy(license_a, "1.00", at=NOW - timedelta(days=1))
        price_add(
            acting_user=billing_user,
            service=Service.AI_IMAGES,
            unit_price=Decimal("0.0002"),
            effective_from=NOW + timedelta(minutes=30),
        )
        html = page(client_a, license_a)
    assert '10,000<span class="estimate__unit"> images' in html  # $1 at $0.0001
    # Nothing posted, and within the cache's hour: the kept sections named the old price.
    with time_machine.travel(NOW + timedelta(minutes=40), tick=False):
        html = page(client_a, license_a)
    assert '5,000<span class="estimate__unit"> images' in html  # $1 at $0.0002
    assert "at $0.0002 per image" in html


def test_how_old_the_data_is_follows_the_clock_while_the_sections_are_kept(client_a, license_a):
    buy(license_a, "10.00", at=NOW - timedelta(days=1))
    SyncState.objects.create(license=license_a, last_success_at=NOW - timedelta(minutes=4))
    with time_machine.travel(NOW, tick=False):
        html = page(client_a, license_a)
    assert 'data-testid="last-updated">4 minutes ago<' in html
    assert 'data-testid="stale-notice"' not in html
    with time_machine.travel(NOW + timedelta(minutes=20), tick=False):
        assert ledger_queries(client_a, license_a) == 0
        html = page(client_a, license_a)
    assert 'data-testid="last-updated" class="negative">24 minutes ago<' in html
    assert 'data-testid="stale-notice"' in html


def test_a_deploy_never_serves_sections_the_previous_release_drew(settings):
    """Nothing in the cache names the code or templates that drew the sections: that holds
    because the cache is each process's memory, and a deploy starts new processes. A cache
    shared between processes outlives a deploy: it must carry the release in its keys."""
    dashboard = settings.CACHES["dashboard"]
    in_memory = {
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    }
    assert dashboard["BACKEND"] in in_memory or dashboard.get("KEY_PREFIX"), (
        "a shared dashboard cache needs the release in KEY_PREFIX (dashboard/render_cache.py)"
    )


def test_two_licenses_in_the_same_state_never_share_a_fragment(
    client_a, member_a, license_a, license_b, frozen
):
    MembershipFactory(license=license_b, user=member_a)
    # Identical ledgers at the same frozen moment: the same entry count, time and balance.
    for license, name in ((license_a, "alpha-order"), (license_b, "bravo-order")):
        buy(license, "10.00", at=NOW - timedelta(days=1), description=name)
    for _ in range(2):  # drawn, then kept
        html_a, html_b = page(client_a, license_a), page(client_a, license_b)
        assert "alpha-order" in html_a and "bravo-order" not in html_a
        assert "bravo-order" in html_b and "alpha-order" not in html_b
        assert str(license_b.public_id) not in html_a.split('id="account-overview"', 1)[1]
    version_a, version_b = kept(license_a)[0], kept(license_b)[0]
    assert version_a != version_b
    assert version_a[0] == license_a.pk and version_b[0] == license_b.pk
    # Even handed another license's entry by mistake, the version does not match.
    caches["dashboard"].set(cache_key(license_b.pk), kept(license_a))
    sections = dashboard_sections(dashboard_basis(license=license_b))
    assert "bravo-order" in sections["transactions"]
    assert "alpha-order" not in sections["transactions"]


def test_what_belongs_to_the_viewer_is_never_kept(client, license_a, frozen):
    owner = MembershipFactory(license=license_a, user=UserFactory(email="owner@alpha.example"))
    member = MembershipFactory(
        license=license_a, user=UserFactory(email="member@alpha.example"), role="member"
    )
    client.force_login(owner.user)
    response = client.post(
        reverse("dashboard:alert_settings", kwargs={"license_id": license_a.public_id}),
        {"low_balance_threshold": "1", "alert_members": [str(owner.pk)], "extra_emails": ""},
    )
    assert response.status_code == 302
    owner_page = page(client, license_a)  # draws and keeps the sections
    assert "owner@alpha.example" in owner_page and "Alert settings saved." in owner_page
    assert ">Alert Settings</a>" in owner_page
    owner_csrf = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', owner_page)

    client.force_login(member.user)
    member_page = page(client, license_a)
    assert "member@alpha.example" in member_page
    assert "owner@alpha.example" not in member_page
    assert "Alert settings saved." not in member_page
    assert ">Alert Settings</a>" not in member_page  # owners only
    assert "set up low balance alerts" not in member_page
    member_csrf = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', member_page)
    assert member_csrf and not set(member_csrf) & set(owner_csrf)
    # The sections themselves are the viewer's nowhere: the same for both.
    sections = kept(license_a)[1]
    assert not any("owner@" in html or "csrfmiddlewaretoken" in html for html in sections.values())


def test_with_no_dashboard_cache_configured_pages_render_in_full(
    client_a, license_a, settings, frozen
):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    buy(license_a, "10.00", at=NOW - timedelta(days=1))
    assert balance(page(client_a, license_a)) == "$10.000000"
    charge(license_a, record(NOW - timedelta(hours=1), images=10_000))
    assert balance(page(client_a, license_a)) == "$9.000000"


def test_with_the_cache_down_pages_render_in_full_and_say_so_in_the_log(
    client_a, license_a, settings, frozen, caplog
):
    # A Redis cache that cannot be reached (nothing listens on port 1).
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "dashboard": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }
    buy(license_a, "10.00", at=NOW - timedelta(days=1))
    with caplog.at_level(logging.WARNING, logger="dashboard.render_cache"):
        html = page(client_a, license_a)
    assert balance(html) == "$10.000000"
    assert "Recent Transaction History" in html
    assert "dashboard cache read failed" in caplog.text
    assert "dashboard cache write failed" in caplog.text
