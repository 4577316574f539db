"""History downloads are limited per login and per license (the API's history.csv counted
with them), answered over the limit by a 429 page saying when to try again (Retry-After)."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from tests.accounts.factories import MembershipFactory
from tests.ledger import buy

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def csv_url(license):
    return reverse("dashboard:history_csv", kwargs={"license_id": license.public_id})


def test_downloads_over_the_limit_get_a_429_page_saying_when(
    client_a, license_a, license_b, member_a, settings
):
    settings.HISTORY_CSV_RATE_LIMIT = 2
    settings.HISTORY_CSV_RATE_WINDOW_SECONDS = 600
    buy(license_a, "10.00", "pay_a")
    buy(license_b, "10.00", "pay_b")
    MembershipFactory(license=license_b, user=member_a)
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(2):
            response = client_a.get(csv_url(license_a))
            assert response.status_code == 200
            assert b"".join(response.streaming_content).startswith(b"\xef\xbb\xbfdate_time,")

        clock.shift(60)
        refused = client_a.get(csv_url(license_a))
        # Not a file, and not a page answering 200 where a file was expected (issue 28).
        assert refused.status_code == 429 and refused["Retry-After"] == "540"
        assert refused["Content-Type"].startswith("text/html")
        assert "attachment" not in refused.get("Content-Disposition", "")
        assert (
            "History downloads are limited to 2 every 10 minutes — "
            "you can download it again in 9 minutes." in refused.content.decode()
        )
        # The other license's downloads are counted apart.
        assert client_a.get(csv_url(license_b)).status_code == 200

        clock.shift(540)
        assert client_a.get(csv_url(license_a)).status_code == 200


def test_the_default_limits_come_from_settings(settings):
    assert settings.HISTORY_CSV_RATE_LIMIT == 10
    assert settings.HISTORY_CSV_RATE_WINDOW_SECONDS == 600
    assert settings.TEST_API_RATE_LIMIT == 10
    assert settings.TEST_API_RATE_WINDOW_SECONDS == 60


# --- abuse (issue 18): HEAD and other methods, per login -------------------------------


def test_head_is_counted_by_the_download_limit_and_never_builds_the_export(
    client_a, license_a, settings
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.HISTORY_CSV_RATE_LIMIT = 3
    buy(license_a, "10.00", "pay_a")
    with time_machine.travel(START, tick=False):
        for _ in range(3):
            with CaptureQueriesContext(connection) as queries:
                head = client_a.head(csv_url(license_a))
            assert head.status_code == 200
            assert head["Content-Disposition"].startswith("attachment;")
            assert head["Cache-Control"] == "no-store"
            assert head.content == b""
            # The page query of the export (PostgreSQL writing the CSV lines) never ran.
            assert not [q for q in queries.captured_queries if "'TimeZone'" in q["sql"]]
            assert not [q for q in queries.captured_queries if "string_agg" in q["sql"].lower()]
        # Three HEADs used the allowance: the GET that would build the export is refused.
        refused = client_a.get(csv_url(license_a))
        assert refused.status_code == 429
        assert "History downloads are limited to 3" in refused.content.decode()
        assert client_a.head(csv_url(license_a)).status_code == 429


def test_a_flood_of_heads_is_cut_off_at_the_limit(client_a, license_a, settings):
    import time

    settings.HISTORY_CSV_RATE_LIMIT = 10
    buy(license_a, "10.00", "pay_a")
    started = time.monotonic()
    statuses = [client_a.head(csv_url(license_a)).status_code for _ in range(40)]
    assert statuses.count(200) == 10 and statuses.count(429) == 30
    assert time.monotonic() - started < 20  # bounded: 40 requests on loopback


def test_other_methods_never_reach_the_export(client_a, license_a, settings):
    settings.HISTORY_CSV_RATE_LIMIT = 1
    buy(license_a, "10.00", "pay_a")
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client_a, method)(csv_url(license_a)).status_code == 405
    # Refused methods did not eat the allowance either.
    assert client_a.get(csv_url(license_a)).status_code == 200


def test_one_member_cannot_use_up_another_members_downloads(client, license_a, member_a, settings):
    settings.HISTORY_CSV_RATE_LIMIT = 2
    buy(license_a, "10.00", "pay_a")
    other = MembershipFactory(license=license_a).user
    client.force_login(member_a)
    for _ in range(2):
        assert client.get(csv_url(license_a)).status_code == 200
    assert client.get(csv_url(license_a)).status_code == 429
    client.force_login(other)
    assert client.get(csv_url(license_a)).status_code == 200
