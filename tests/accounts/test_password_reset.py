"""Password reset against abuse (issue 18, ASVS 2.5 and 2.2.1): throttled per address and
per target email, the same answer and the same work whether or not a login has the email
(the email is sent by a worker), and a link built from PORTAL_BASE_URL, never from the
request's Host header."""

import re

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import views
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/accounts/password/reset/"


@pytest.fixture
def enqueued(monkeypatch):
    """What the page hands to a worker (portal.tasks.task_enqueue), instead of a broker."""
    handed: list[dict] = []

    def record(task, **kwargs):
        handed.append({"task": task.name, **kwargs})
        return True

    monkeypatch.setattr(views, "task_enqueue", record)
    return handed


def test_a_forged_host_header_never_reaches_the_link(client, member_a, settings, celery_eager):
    settings.ALLOWED_HOSTS = ["*"]  # as behind a proxy passing any Host through
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    response = client.post(
        URL,
        {"email": member_a.email},
        HTTP_HOST="evil.example",
        HTTP_X_FORWARDED_HOST="evil.example",
    )
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    body = str(mail.outbox[0].body)
    assert "evil.example" not in body
    assert re.search(r"https://portal\.example\.com/accounts/password/reset/\S+/\S+/", body)


def test_the_answer_and_the_work_are_the_same_with_or_without_a_login(client, enqueued):
    UserFactory(email="known@alpha.example")
    answers, query_shapes = [], []
    for email in ("known@alpha.example", "nobody@alpha.example"):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(URL, {"email": email}, REMOTE_ADDR="198.51.100.7")
        page = client.get(response["Location"])
        answers.append((response.status_code, response["Location"], page.content.decode()))
        query_shapes.append([q["sql"] for q in queries if "accounts_user" in q["sql"]])
    assert answers[0] == answers[1]
    # The request never looks the login up: the worker does, after the answer has gone.
    assert query_shapes == [[], []]
    assert [h["args"] for h in enqueued] == [["known@alpha.example"], ["nobody@alpha.example"]]
    assert {h["task"] for h in enqueued} == {"accounts.password_reset_send"}
    assert mail.outbox == []  # nothing was sent while the person waited


def test_the_worker_sends_to_a_login_and_to_nobody_else(member_a):
    from accounts.tasks import password_reset_send_task

    assert password_reset_send_task.run("nobody@alpha.example") == 0
    assert mail.outbox == []
    assert password_reset_send_task.run(member_a.email.upper()) == 1
    assert [m.to for m in mail.outbox] == [[member_a.email]]


@pytest.mark.parametrize("email", ["ann@alpha.example", "nobody@alpha.example"])
def test_one_email_is_not_flooded_from_many_addresses(client, member_a, settings, enqueued, email):
    settings.PASSWORD_RESET_LIMIT_PER_EMAIL = 3
    for n in range(3):
        ok = client.post(URL, {"email": email}, REMOTE_ADDR=f"203.0.113.{n + 1}")
        assert ok.status_code == 302
    refused = client.post(URL, {"email": email.upper()}, REMOTE_ADDR="203.0.113.99")
    assert refused.status_code == 429
    text = refused.content.decode()
    assert "Too many password reset requests for this email" in text and "minutes" in text
    assert len(enqueued) == 3


def test_one_address_cannot_spray_resets_over_many_emails(client, settings, enqueued):
    settings.PASSWORD_RESET_LIMIT_PER_ADDRESS = 10
    for n in range(10):
        ok = client.post(URL, {"email": f"user{n}@alpha.example"}, REMOTE_ADDR="192.0.2.50")
        assert ok.status_code == 302
    refused = client.post(URL, {"email": "user99@alpha.example"}, REMOTE_ADDR="192.0.2.50")
    assert refused.status_code == 429
    assert "Too many password reset requests from your address" in refused.content.decode()
    other_address = client.post(URL, {"email": "user99@alpha.example"}, REMOTE_ADDR="192.0.2.51")
    assert other_address.status_code == 302
    assert len(enqueued) == 11
