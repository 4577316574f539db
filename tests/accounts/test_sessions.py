"""Sessions are Django's, in accounts.Session with the login's id beside their data
(accounts/sessions.py): what Django's own checks guarantee about a session must hold, and
a page reads the session and its login once each."""

from datetime import timedelta

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Session, User
from accounts.tasks import sessions_clear_expired_task
from tests.accounts.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db


def dashboard(license) -> str:
    return f"/l/{license.public_id}/"


def logged_in(user) -> Client:
    client = Client()
    assert (
        client.post("/accounts/login/", {"username": user.email, "password": PASSWORD}).status_code
        == 302
    )
    return client


def test_a_page_reads_the_session_and_its_login_once_each(client_a, license_a, member_a):
    client_a.get(dashboard(license_a))  # renews the session: the next request writes nothing
    with CaptureQueriesContext(connection) as ctx:
        response = client_a.get(dashboard(license_a))
    assert response.status_code == 200 and member_a.email in response.content.decode()
    sessions = [q["sql"] for q in ctx.captured_queries if 'FROM "accounts_session"' in q["sql"]]
    logins = [q["sql"] for q in ctx.captured_queries if 'FROM "accounts_user"' in q["sql"]]
    assert len(sessions) == 1 and len(logins) == 1
    assert Session.objects.get(session_key=client_a.session.session_key).user == member_a


def test_sessions_opened_before_name_a_backend_that_still_logs_them_in(license_a, member_a):
    # Sessions name the backend that logged them in by its path; accounts.sessions'
    # ModelBackend was a subclass of Django's until it became Django's own (an alias).
    client = logged_in(member_a)
    assert client.session[BACKEND_SESSION_KEY] == "accounts.sessions.ModelBackend"
    assert client.get(dashboard(license_a)).status_code == 200


def test_a_session_is_always_its_own_logins_whatever_its_row_says(license_a, member_a, member_b):
    """The row's login column only saves a query: were it ever to name someone else (or no
    one), the session is still the login its data names."""
    client = logged_in(member_a)
    key = client.session.session_key
    for other in (member_b.pk, None):
        Session.objects.filter(session_key=key).update(user_id=other)
        response = client.get(dashboard(license_a))
        assert response.status_code == 200
        page = response.content.decode()
        assert member_a.email in page and member_b.email not in page


def test_a_password_changed_elsewhere_ends_the_other_sessions(license_a, member_a):
    here, elsewhere = logged_in(member_a), logged_in(member_a)
    assert elsewhere.get(dashboard(license_a)).status_code == 200
    new = "an-entirely-new-passphrase-91"
    changed = here.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert changed.status_code == 302
    assert here.get(dashboard(license_a)).status_code == 200  # the changer stays in
    response = elsewhere.get(dashboard(license_a))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_logging_out_ends_the_session_and_a_new_login_gets_a_new_one(license_a, member_a, member_b):
    MembershipFactory(license=license_a, user=member_b)
    client = logged_in(member_a)
    first = client.session.session_key
    assert client.post("/accounts/logout/").status_code == 302
    assert not Session.objects.filter(session_key=first).exists()
    assert client.get(dashboard(license_a)).status_code == 302
    assert (
        client.post(
            "/accounts/login/", {"username": member_b.email, "password": PASSWORD}
        ).status_code
        == 302
    )
    page = client.get(dashboard(license_a)).content.decode()
    assert member_b.email in page and member_a.email not in page
    assert Session.objects.get(session_key=client.session.session_key).user == member_b


def test_deleting_a_login_deletes_its_sessions(license_a, member_a):
    client = logged_in(member_a)
    key = client.session.session_key
    member_a.memberships.all().delete()
    member_a.delete()
    assert not Session.objects.filter(session_key=key).exists()
    assert client.get(dashboard(license_a)).status_code == 302


def test_expired_sessions_are_removed_and_live_ones_kept(license_a, member_a):
    live = logged_in(member_a).session.session_key
    gone = logged_in(member_a).session.session_key
    Session.objects.filter(session_key=gone).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    sessions_clear_expired_task()
    assert set(Session.objects.values_list("session_key", flat=True)) == {live}


def test_the_beat_clears_expired_sessions_every_hour():
    from portal.celery import app

    entry = app.conf.beat_schedule["accounts-clear-expired-sessions-every-hour"]
    assert entry["task"] == sessions_clear_expired_task.name and entry["schedule"] == 3600


def test_an_inactive_login_is_logged_out_and_a_missing_session_is_a_new_one(license_a, member_a):
    client = logged_in(member_a)
    assert client.get(dashboard(license_a)).status_code == 200
    User.objects.filter(pk=member_a.pk).update(is_active=False)
    assert client.get(dashboard(license_a)).status_code == 302
    User.objects.filter(pk=member_a.pk).update(is_active=True)
    Session.objects.all().delete()
    assert client.get(dashboard(license_a)).status_code == 302
