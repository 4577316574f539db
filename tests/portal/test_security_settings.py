"""The security settings a deployment relies on, proven on real requests: HTTPS redirect
(configurable, and right behind a TLS proxy), HSTS, cookie flags, Referrer-Policy,
X-Frame-Options, the CSP header, and CSRF on every customer POST."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "s3cr3t-" + "q" * 60,
    "ALLOWED_HOSTS": "portal.example.com",
}
NAMES = (
    "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE",
    "X_FRAME_OPTIONS", "SECURE_REFERRER_POLICY", "DEBUG",
)  # fmt: skip


def production_settings(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {NAMES!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code], cwd=ROOT,
        env={**clean, **PRODUCTION_ENV, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_defaults_are_https_only_with_hsts_and_secure_cookies():
    s = production_settings()
    assert s["DEBUG"] is False
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] is None  # no header is trusted unless configured
    assert s["SECURE_HSTS_SECONDS"] >= 31536000 and s["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"]
    assert s["SESSION_COOKIE_HTTPONLY"] is True
    assert s["SESSION_COOKIE_SAMESITE"] == s["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert s["X_FRAME_OPTIONS"] == "DENY" and s["SECURE_REFERRER_POLICY"] == "same-origin"


def test_behind_a_tls_proxy_the_forwarded_proto_is_trusted_and_the_redirect_can_be_off():
    s = production_settings(BEHIND_TLS_PROXY="true", SECURE_SSL_REDIRECT="false")
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["SECURE_SSL_REDIRECT"] is False


@pytest.mark.django_db
@override_settings(
    SECURE_SSL_REDIRECT=True,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    SECURE_HSTS_SECONDS=31536000,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    SESSION_COOKIE_SECURE=True,
    CSRF_COOKIE_SECURE=True,
)
def test_plain_http_is_redirected_and_https_pages_carry_hsts_and_secure_cookies(client, member_a):
    plain = client.get("/accounts/login/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    # Behind the proxy, a request that arrived over TLS is served, with HSTS.
    page = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    login = client.post(
        "/accounts/login/",
        {"username": member_a.email, "password": "correct-horse-battery-9"},
        HTTP_X_FORWARDED_PROTO="https",
    )
    assert login.status_code in (200, 302)
    csrf = login.cookies.get("csrftoken") or page.cookies["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"


@pytest.mark.django_db
def test_every_page_sends_the_protective_headers(client_a, license_a):
    response = client_a.get(
        reverse("dashboard:overview", kwargs={"license_id": license_a.public_id})
    )
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


@pytest.mark.django_db
def test_the_session_cookie_is_httponly_and_samesite(client, member_a):
    from tests.accounts.factories import PASSWORD

    response = client.post("/accounts/login/", {"username": member_a.email, "password": PASSWORD})
    assert response.status_code == 302
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 60 * 60 * 2  # the idle timeout, renewed on each request


@pytest.mark.django_db
def test_customer_posts_without_a_csrf_token_are_refused(member_a, license_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member_a)
    for name in ("dashboard:refresh", "dashboard:test_api", "dashboard:alert_settings"):
        response = client.post(reverse(name, kwargs={"license_id": license_a.public_id}))
        assert response.status_code == 403, name
        assert "Traceback" not in response.content.decode()
    assert client.post("/accounts/logout/").status_code == 403
