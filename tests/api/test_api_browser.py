"""In Chromium: an owner makes a key, copies the example the page gives, and the copied
command works against the portal's API; the Test API page copies an example that carries
the real key once revealed, and checks the portal API with the customer's key."""

from decimal import Decimal

import httpx
import pytest
from django.urls import reverse

from api.webhooks import signature_verify
from billing.ledger.selectors import balance_get
from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory
from tests.ledger import buy
from tests.matching import search

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _curl_parts(command: str) -> tuple[str, str]:
    token = search(r'Authorization: Bearer ([^"]+)"', command).group(1)
    url = search(r"(https?://\S+)", command.replace("\\\n", " ")).group(1)
    return url, token


def _license_with_owner():
    license = LicenseFactory(name="Acme Corp", key="ACME-PRO-0001")
    owner = UserFactory(email="alice@acme.example")
    owner.set_password("pw-alice-123")
    owner.save()
    MembershipFactory(license=license, user=owner, role="owner")
    return license


def _owner_logged_in(new_page):
    """A page logged in as the owner, allowed to read what Copy buttons copy."""
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto(reverse("accounts:login"))
    page.get_by_label("Email").fill("alice@acme.example")
    page.get_by_label("Password").fill("pw-alice-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    return page


def test_an_owner_copies_a_working_example(new_page, live_server, settings):
    settings.PORTAL_API_BASE_URL = f"{live_server.url}/api/v1"
    license = _license_with_owner()
    buy(license, "12.345678")

    page = _owner_logged_in(new_page)

    page.goto(reverse("dashboard:api_keys", kwargs={"license_id": license.public_id}))
    page.get_by_label("Name").fill("billing sync")
    page.get_by_role("button", name="Make key").click()
    page.get_by_role("button", name="Copy example").click()
    page.get_by_text("Copied.").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    url, token = _curl_parts(copied)
    answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200
    assert Decimal(answer.json()["balance"]) == balance_get(license).balance
    page.screenshot(path="test-artifacts/api-keys.png", full_page=True)

    # The Test API page: the example carries the masked key until the owner reveals it.
    page.goto(reverse("dashboard:test_api", kwargs={"license_id": license.public_id}))
    assert license.key not in page.content()
    page.get_by_role("button", name="Reveal key").click()
    page.locator('[data-copy-target="example-request"]').click()
    page.locator('[data-copy-status="example-request"]').get_by_text("Copied.").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert f"Authorization: Bearer {license.key}" in copied
    assert copied.startswith(f"curl {settings.CUSTOMER_API_BASE_URL}/v1/chat/completions")

    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Check the API").click()
    result = page.get_by_test_id("api-check").inner_text()
    assert "balance $12.345678" in result and token not in page.content()
    page.screenshot(path="test-artifacts/test-api.png", full_page=True)
    assert page.csp_violations == []


def test_an_owner_registers_a_webhook_copies_its_secret_and_reads_the_log(
    new_page, live_server, receiver, celery_eager
):
    license = _license_with_owner()
    hook = receiver(500)  # the first delivery fails; the resend succeeds

    page = _owner_logged_in(new_page)
    page.goto(reverse("dashboard:api_keys", kwargs={"license_id": license.public_id}))
    page.get_by_role("link", name="webhook endpoint").click()

    page.get_by_label("Endpoint URL").fill("http://example.com/hooks")
    page.get_by_label("purchase.succeeded").check()
    page.get_by_role("button", name="Register endpoint").click()
    assert "Endpoint URL: Use an https:// address" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("purchase.succeeded").is_checked()  # nothing chosen is lost

    page.get_by_label("Endpoint URL").fill(hook.url)
    page.get_by_role("button", name="Register endpoint").click()
    page.get_by_role("button", name="Copy secret").click()
    page.get_by_text("Copied.").wait_for()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert secret.startswith("whsec_")
    page.screenshot(path="test-artifacts/webhooks.png", full_page=True)

    buy(license, "5.00")  # commits: purchase.succeeded is delivered (and fails once)
    page.get_by_role("link", name="Open the endpoint and its delivery log").click()
    row = page.get_by_test_id("webhook-delivery")
    assert "answered 500" in row.inner_text()
    row.get_by_role("button", name="Resend").click()
    page.get_by_text("is being sent again").wait_for()
    assert "Delivered" in page.get_by_test_id("webhook-delivery").inner_text()
    (headers_1, body_1), (headers_2, body_2) = hook.requests
    assert body_1 == body_2 and headers_1["Webhook-Id"] == headers_2["Webhook-Id"]
    assert signature_verify(secret=secret, body=body_2, header=headers_2["Webhook-Signature"])
    assert secret not in page.content()  # shown once, on the page that made it
    page.screenshot(path="test-artifacts/webhook-log.png", full_page=True)
    assert page.csp_violations == []
    assert [r.split()[0] for r in page.bad_responses] == ["400"]  # the refused URL only
