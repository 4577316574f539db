"""The Webhooks page: an owner registers an endpoint (secret shown once), reads its delivery
log, resends, switches it off, rotates its secret and deletes it, each change audited;
members only read; another license's endpoints and deliveries are 404."""

import json
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Membership
from api.models import WebhookDelivery, WebhookEndpoint
from api.services import webhook_endpoint_create
from api.webhooks import signature_verify
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.ledger import buy
from tests.usage.test_hostile_input import HOSTILE, assert_inert

pytestmark = pytest.mark.django_db


def _url(license, name="webhooks", **kwargs):
    return reverse(f"dashboard:{name}", kwargs={"license_id": license.public_id, **kwargs})


@pytest.fixture
def member(alice_license):
    return MembershipFactory(
        license=alice_license, user=UserFactory(email="m@acme.example"), role=Membership.Role.MEMBER
    ).user


def test_an_owner_registers_an_endpoint_and_sees_its_secret_once(
    client, alice_license, alice, receiver, committed
):
    hook = receiver()
    client.force_login(alice)
    page = client.post(
        _url(alice_license), {"url": hook.url, "events": ["purchase.succeeded", "balance.low"]}
    )
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get()
    html = page.content.decode()
    assert endpoint.secret in html and "shown only this once" in html
    assert endpoint.events == ["balance.low", "purchase.succeeded"]
    assert AuditEvent.objects.filter(action="webhook.create", actor=alice).count() == 1

    # The list and the endpoint's page show the secret's start only.
    for url in (_url(alice_license), _url(alice_license, "webhook", endpoint_id=endpoint.pk)):
        again = client.get(url).content.decode()
        assert endpoint.url in again and endpoint.secret_display in again
        assert endpoint.secret not in again

    # The secret on the page is the one the deliveries are signed with.
    committed(buy, alice_license, "5.00")
    headers, body = hook.requests[0]
    assert signature_verify(secret=endpoint.secret, body=body, header=headers["Webhook-Signature"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "http://example.com/hooks", "events": ["balance.low"]}, "Endpoint URL: Use an https://"),
        ({"url": "https://10.1.2.3/hooks", "events": ["balance.low"]}, "Endpoint URL: 10.1.2.3 resolves"),
        ({"url": "", "events": ["balance.low"]}, "Endpoint URL: This field is required."),
        ({"url": "https://example.com/hooks", "events": []}, "Events: Choose at least one event."),
        ({"url": "https://example.com/hooks", "events": ["balance.stolen"]}, "Events: Select a valid choice."),
    ],
)  # fmt: skip
def test_a_bad_endpoint_is_refused_naming_the_field(client, alice_license, alice, data, message):
    client.force_login(alice)
    page = client.post(_url(alice_license), data)
    assert page.status_code == 400
    assert message in page.content.decode()
    assert data["url"] in page.content.decode()  # what was typed stays in the form
    assert not WebhookEndpoint.objects.exists()


def test_plain_http_is_refused_in_production_even_to_loopback(
    client, alice_license, alice, receiver, settings
):
    settings.WEBHOOK_ALLOW_LOOPBACK = False  # production's setting
    client.force_login(alice)
    page = client.post(_url(alice_license), {"url": receiver().url, "events": ["balance.low"]})
    assert page.status_code == 400 and "Endpoint URL: 127.0.0.1" in page.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_delivery_log_and_resend_sends_the_same_event_id(
    client, alice_license, alice, receiver, committed, django_capture_on_commit_callbacks
):
    hook = receiver(500)  # the first attempt fails
    endpoint, _ = webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=hook.url, events=["purchase.succeeded"]
    )
    committed(buy, alice_license, "5.00")
    delivery = WebhookDelivery.objects.get()
    client.force_login(alice)
    log = client.get(_url(alice_license, "webhook", endpoint_id=endpoint.pk)).content.decode()
    assert "purchase.succeeded" in log and delivery.event.public_id in log
    assert "answered 500" in log and ">500<" in log  # the last error and the response code

    resend = _url(alice_license, "webhook_resend", endpoint_id=endpoint.pk, delivery_id=delivery.pk)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(resend, follow=True)
    assert "is being sent again" in answer.content.decode()
    assert len(hook.requests) == 2
    first, second = (json.loads(body)["id"] for _, body in hook.requests)
    assert first == second == hook.requests[1][0]["Webhook-Id"] == delivery.event.public_id
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.last_status_code == 200
    assert AuditEvent.objects.filter(action="webhook.resend", actor=alice).count() == 1


def test_an_owner_switches_off_rotates_and_deletes(
    client, alice_license, alice, receiver, committed
):
    hook = receiver()
    endpoint, old_secret = webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=hook.url, events=["purchase.succeeded"]
    )
    client.force_login(alice)
    detail = _url(alice_license, "webhook", endpoint_id=endpoint.pk)

    client.post(_url(alice_license, "webhook_set_active", endpoint_id=endpoint.pk), {"active": "0"})
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.state == "switched off"
    committed(buy, alice_license, "1.00")
    assert hook.requests == []  # nothing is sent to a switched-off endpoint
    client.post(_url(alice_license, "webhook_set_active", endpoint_id=endpoint.pk), {"active": "1"})
    endpoint.refresh_from_db()
    assert endpoint.is_active

    rotated = client.post(_url(alice_license, "webhook_rotate_secret", endpoint_id=endpoint.pk))
    endpoint.refresh_from_db()
    assert endpoint.secret != old_secret and endpoint.secret in rotated.content.decode()
    assert rotated["Cache-Control"] == "no-store"
    assert endpoint.secret not in client.get(detail).content.decode()
    committed(buy, alice_license, "1.00")
    headers, body = hook.requests[-1]
    assert signature_verify(secret=endpoint.secret, body=body, header=headers["Webhook-Signature"])
    assert not signature_verify(secret=old_secret, body=body, header=headers["Webhook-Signature"])

    client.post(_url(alice_license, "webhook_delete", endpoint_id=endpoint.pk))
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
    assert client.get(detail).status_code == 404
    actions = set(AuditEvent.objects.filter(actor=alice).values_list("action", flat=True))
    assert {
        "webhook.create",
        "webhook.disable",
        "webhook.enable",
        "webhook.rotate_secret",
        "webhook.delete",
    } <= actions


def test_members_see_endpoints_and_deliveries_but_change_nothing(
    client, alice_license, alice, member, receiver, committed
):
    hook = receiver()
    endpoint, secret = webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=hook.url, events=["purchase.succeeded"]
    )
    committed(buy, alice_license, "1.00")
    delivery = WebhookDelivery.objects.get()
    client.force_login(member)
    listing = client.get(_url(alice_license)).content.decode()
    assert hook.url in listing and "Register endpoint" not in listing
    detail = client.get(_url(alice_license, "webhook", endpoint_id=endpoint.pk)).content.decode()
    assert delivery.event.public_id in detail and ">Resend</button>" not in detail
    assert secret not in listing + detail

    ids = {"endpoint_id": endpoint.pk}
    refused = [
        client.post(_url(alice_license), {"url": hook.url, "events": ["balance.low"]}),
        client.post(_url(alice_license, "webhook_set_active", **ids), {"active": "0"}),
        client.post(_url(alice_license, "webhook_rotate_secret", **ids)),
        client.post(_url(alice_license, "webhook_delete", **ids)),
        client.post(_url(alice_license, "webhook_resend", **ids, delivery_id=delivery.pk)),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.secret == secret
    assert WebhookEndpoint.objects.count() == 1
    assert not AuditEvent.objects.filter(actor=member).exists()


def test_another_licenses_endpoint_and_delivery_are_404(
    client, alice_license, alice, bob_license, receiver, committed
):
    bob = MembershipFactory(
        license=bob_license, user=UserFactory(email="bob@globex.example"), role="owner"
    ).user
    theirs, _ = webhook_endpoint_create(
        acting_user=bob, license=bob_license, url=receiver().url, events=["purchase.succeeded"]
    )
    committed(buy, bob_license, "1.00")
    their_delivery = WebhookDelivery.objects.get()
    ours, _ = webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=receiver().url, events=["balance.low"]
    )
    client.force_login(alice)
    ids = {"endpoint_id": theirs.pk}
    answers = [
        client.get(_url(alice_license, "webhook", **ids)),
        client.post(_url(alice_license, "webhook_set_active", **ids), {"active": "0"}),
        client.post(_url(alice_license, "webhook_rotate_secret", **ids)),
        client.post(_url(alice_license, "webhook_delete", **ids)),
        client.post(_url(alice_license, "webhook_resend", **ids, delivery_id=their_delivery.pk)),
        # Their delivery under our endpoint's URL, and their license's pages.
        client.post(
            _url(
                alice_license, "webhook_resend", endpoint_id=ours.pk, delivery_id=their_delivery.pk
            )
        ),
        client.get(_url(bob_license)),
        client.get(_url(bob_license, "webhook", **ids)),
        client.get(_url(alice_license, "webhook", endpoint_id=2**70)),
    ]
    assert [a.status_code for a in answers] == [404] * len(answers)
    theirs.refresh_from_db()
    assert theirs.is_active and WebhookEndpoint.objects.count() == 2
    assert theirs.url not in client.get(_url(alice_license)).content.decode()


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_urls_are_refused_and_shown_inert(client, alice_license, alice, kind):
    text = HOSTILE[kind]
    client.force_login(alice)
    for url in (
        text,
        f"https://{text}/hooks",
        f"https://10.0.0.1/{text}",
        f"http://127.0.0.1/{text}",
    ):
        page = client.post(_url(alice_license), {"url": url, "events": ["balance.low"]})
        assert page.status_code in (200, 400), url
        assert_inert(page.content.decode(), text)
    # Only a loopback URL whose path merely contains the text could be kept (development).
    for endpoint in WebhookEndpoint.objects.all():
        assert endpoint.url.startswith("http://127.0.0.1/")


def test_the_webhook_pages_show_times_in_the_license_timezone_saying_which(
    client, alice_license, alice, receiver
):
    """Issue 26: every time a customer page shows is the license's, labelled; the next
    request (a staff page, say) is back in the site's timezone."""
    endpoint, _ = webhook_endpoint_create(
        acting_user=alice, license=alice_license, url=receiver().url, events=["purchase.succeeded"]
    )
    # 03:30 UTC on Jan 15 is 22:30 the evening before in New York.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        created_at=datetime(2026, 1, 15, 3, 30, tzinfo=UTC)
    )
    client.force_login(alice)
    page = client.get(_url(alice_license, "webhook", endpoint_id=endpoint.pk)).content.decode()
    assert "Jan 14, 2026 22:30 EST" in page
    assert "Jan 15, 2026 03:30" not in page
    assert timezone.get_current_timezone_name() == settings.TIME_ZONE
