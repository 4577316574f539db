"""Security baseline: deploy checks, login lockout, error pages that leak nothing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.test import override_settings
from django.urls import path

from tests.accounts.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "s3cr3t-" + "q" * 60,
    "ALLOWED_HOSTS": "portal.example.com",
}


def test_check_deploy_reports_nothing_under_production_settings():
    # The browser tests allow Django's ORM beside Playwright's event loop in this process;
    # a deployment never sets that, so neither does this check.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**env, **PRODUCTION_ENV}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def login(client, email, password, **extra):
    return client.post("/accounts/login/", {"username": email, "password": password}, **extra)


@pytest.mark.django_db
def test_repeated_wrong_passwords_lock_the_account_from_that_address(client, member_a, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        login(client, member_a.email, "wrong")
    locked = login(client, member_a.email, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    # The lock is per account and address: another address can still log in.
    other = login(client, member_a.email, PASSWORD, REMOTE_ADDR="10.9.9.9")
    assert other.status_code == 302


@pytest.mark.django_db
def test_staff_unlock_by_clearing_attempts(client, member_a, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        login(client, member_a.email, "wrong")
    assert login(client, member_a.email, PASSWORD).status_code == 429
    AccessAttempt.objects.all().delete()  # what the admin's "delete access attempts" does
    assert login(client, member_a.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_admin_login_is_protected_too(client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        client.post("/admin/login/", {"username": "admin@portal.example", "password": "x"})
    response = client.post("/admin/login/", {"username": "admin@portal.example", "password": "y"})
    assert response.status_code == 429


@pytest.mark.django_db
def test_forwarded_header_is_ignored_unless_configured(client, member_a, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for i in range(2):
        login(client, member_a.email, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
    # Spoofed headers did not spread the failures over two addresses.
    response = login(client, member_a.email, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert response.status_code == 429


@pytest.mark.django_db
def test_configured_proxy_header_gives_the_real_address(client, member_a, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(2):
        login(client, member_a.email, "wrong", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert (
        login(client, member_a.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code
        == 429
    )
    assert (
        login(client, member_a.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code
        == 302
    )


def boom(request):
    raise RuntimeError("secret internal detail: Bravo Secret Inc")


urlpatterns = [path("boom/", boom)]


@pytest.mark.django_db
def test_500_page_leaks_no_trace(client, settings):
    settings.DEBUG = False
    client.raise_request_exception = False
    with override_settings(ROOT_URLCONF=__name__):
        response = client.get("/boom/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong on our side" in body
    assert "Traceback" not in body and "secret internal detail" not in body


@pytest.mark.django_db
def test_404_page_is_ours_and_names_nothing(client_a, license_b):
    response = client_a.get(f"/l/{license_b.public_id}/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body
    assert license_b.name not in body and str(license_b.public_id) not in body.replace(
        f"/l/{license_b.public_id}/", ""
    )


@pytest.mark.django_db
def test_session_idle_timeout_and_cookie_flags(settings):
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"
    assert settings.AUTH_PASSWORD_VALIDATORS


@pytest.mark.django_db
def test_lockout_ends_after_the_cool_off(client, member_a, settings):
    import datetime as dt

    import time_machine

    settings.AXES_FAILURE_LIMIT = 2
    start = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        for _ in range(2):
            login(client, member_a.email, "wrong")
        assert login(client, member_a.email, PASSWORD).status_code == 429
    with time_machine.travel(start + settings.AXES_COOLOFF_TIME + dt.timedelta(seconds=1)):
        assert login(client, member_a.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_idle_session_is_extended_by_a_person_not_by_the_auto_refresh(
    client, member_a, license_a, settings
):
    import datetime as dt

    import time_machine

    from accounts.models import Session

    dashboard = f"/l/{license_a.public_id}/"
    start = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    idle = dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    with time_machine.travel(start, tick=False):
        assert login(client, member_a.email, PASSWORD).status_code == 302
    key = client.session.session_key
    with time_machine.travel(start + idle / 2, tick=False):
        assert client.get(dashboard).status_code == 200  # the person clicks: extended
    extended = Session.objects.get(session_key=key).expire_date
    assert extended == start + idle / 2 + idle
    with time_machine.travel(start + idle, tick=False):
        assert client.get(dashboard, HTTP_X_AUTO_REFRESH="1").status_code == 200
    assert Session.objects.get(session_key=key).expire_date == extended  # not extended
    with time_machine.travel(extended + dt.timedelta(seconds=1), tick=False):
        response = client.get(dashboard, HTTP_X_AUTO_REFRESH="1")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_person_clicking_around_renews_the_session_at_most_once_a_minute(
    client, member_a, license_a, settings
):
    import datetime as dt

    import time_machine

    from accounts.models import Session

    dashboard = f"/l/{license_a.public_id}/"
    start = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    idle = dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    with time_machine.travel(start, tick=False):
        assert login(client, member_a.email, PASSWORD).status_code == 302
        key = client.session.session_key
        assert client.get(dashboard).status_code == 200
    renewed = Session.objects.get(session_key=key).expire_date
    assert renewed == start + idle
    # Within the minute: no write, the expiry stays.
    with time_machine.travel(start + dt.timedelta(seconds=59), tick=False):
        response = client.get(dashboard)
    assert response.status_code == 200 and "sessionid" not in response.cookies
    assert Session.objects.get(session_key=key).expire_date == renewed
    # A minute on: renewed again, and the cookie with it.
    later = start + dt.timedelta(seconds=60)
    with time_machine.travel(later, tick=False):
        response = client.get(dashboard)
    assert int(response.cookies["sessionid"]["max-age"]) == settings.SESSION_COOKIE_AGE
    assert Session.objects.get(session_key=key).expire_date == later + idle
