"""Login abuse (issue 18, finding 3): guesses spread over many addresses, sprays over many
accounts, and staff logins that need a second factor (TOTP or a recovery code)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.otp import staff_otp_enrol
from accounts.roles import BILLING, SUPPORT
from tests.accounts.factories import PASSWORD, UserFactory
from tests.conftest import totp_code

pytestmark = pytest.mark.django_db
START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def login(client, email, password, address):
    return client.post(
        "/accounts/login/", {"username": email, "password": password}, REMOTE_ADDR=address
    )


def test_guesses_on_one_account_from_many_addresses_lock_that_account(client, member_a, settings):
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 10
    refused = 0
    with time_machine.travel(START, tick=False) as clock:
        # 80 guesses from 20 addresses (4 each, under the per-pair limit of 5), a minute apart.
        for i in range(80):
            response = login(client, member_a.email, f"guess-{i}", f"198.51.100.{i % 20}")
            refused += response.status_code == 429
            clock.shift(60)
            if refused >= 5:
                break
        assert i < 20  # locked after 10 failures, well before 80 guesses
        assert refused >= 5, "the account was never locked"
        locked = login(client, member_a.email, PASSWORD, "203.0.113.77")  # a fresh address
        assert locked.status_code == 429
        page = locked.content.decode()
        # Locked for the cool-off from the last failure; the wait left is what it says.
        assert "Too many failed logins for this email — you can try again in 24 minutes." in page
        clock.shift(timedelta(minutes=24, seconds=1))
        assert login(client, member_a.email, PASSWORD, "203.0.113.77").status_code == 302


def test_a_spray_over_many_accounts_from_one_address_locks_that_address(client, db, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 20
    users = [UserFactory(email=f"user{i}@spray.example") for i in range(12)]
    statuses = []
    with time_machine.travel(START, tick=False) as clock:
        for i in range(48):  # 4 guesses per account, 48 in all
            statuses.append(
                login(client, users[i % 12].email, "Winter2026!", "192.0.2.9").status_code
            )
            clock.shift(90)
        assert statuses[:10] == [200] * 10  # the first guesses are plain wrong passwords
        # Then ever longer waits, and the lock at 20: at most 20 of the 48 were checked.
        assert statuses.count(200) == 20
        assert statuses[-9:] == [429] * 9  # locked, whatever the account
        refused = login(client, users[0].email, PASSWORD, "192.0.2.9")
        assert refused.status_code == 429
        assert "Too many failed logins from your address" in refused.content.decode()
        # The accounts themselves are not locked: their owners log in from elsewhere.
        assert login(client, users[0].email, PASSWORD, "203.0.113.5").status_code == 302


def test_delays_grow_with_each_failure_and_say_how_long(client, member_a, settings):
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 10  # free 5, then 2 s, 4 s, 8 s …
    settings.AXES_FAILURE_LIMIT = 100  # the pair lockout out of the way
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(5):
            assert login(client, member_a.email, "wrong", "10.0.0.1").status_code == 200
        too_soon = login(client, member_a.email, PASSWORD, "10.0.0.2")
        assert too_soon.status_code == 429
        assert "you can try again in 2 seconds" in too_soon.content.decode()
        clock.shift(2)
        assert login(client, member_a.email, "wrong", "10.0.0.1").status_code == 200  # 6th
        assert (
            "in 4 seconds" in login(client, member_a.email, PASSWORD, "10.0.0.2").content.decode()
        )
        clock.shift(4)
        # The right password after the wait logs in, and clears the account's count.
        assert login(client, member_a.email, PASSWORD, "10.0.0.2").status_code == 302
        client.logout()
        assert login(client, member_a.email, "wrong", "10.0.0.3").status_code == 200


def test_the_pair_lockout_says_for_how_long(client, member_a, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        login(client, member_a.email, "wrong", "10.1.1.1")
    locked = login(client, member_a.email, PASSWORD, "10.1.1.1")
    assert locked.status_code == 429
    assert "This login is locked for 30 minutes" in locked.content.decode()


# --- staff: a second factor ---------------------------------------------------------------


def staff_user(group: str | None = None, superuser: bool = False):
    user = UserFactory(
        email=f"{group or 'root'}@portal.example", is_staff=True, is_superuser=superuser
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def admin_login(client, email, password, code="", address="127.0.0.1"):
    return client.post(
        reverse("admin:login"),
        {"username": email, "password": password, "otp_token": code, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


@pytest.mark.parametrize("role", [SUPPORT, BILLING, None])
def test_staff_need_their_authenticator_code_to_reach_the_admin(client, role):
    user = staff_user(role, superuser=role is None)
    staff_otp_enrol(acting_user=None, user=user)
    with time_machine.travel(START, tick=False) as clock:
        no_code = admin_login(client, user.email, PASSWORD)
        assert no_code.status_code == 200
        assert "Enter the code from your authenticator app" in no_code.content.decode()
        right = totp_code(user)
        wrong = admin_login(
            client, user.email, PASSWORD, "000000" if right != "000000" else "1" * 6
        )
        assert "That code is not right" in wrong.content.decode()
        assert client.get("/admin/").status_code == 302  # not in
        clock.shift(2)  # django-otp slows guesses too: 1 s after a wrong code, then 2 s, 4 s …
        ok = admin_login(client, user.email, PASSWORD, totp_code(user))
        assert ok.status_code == 302 and ok["Location"] == "/admin/"
        assert client.get("/admin/").status_code == 200


def test_a_recovery_code_works_once(client):
    user = staff_user(SUPPORT)
    enrolment = staff_otp_enrol(acting_user=None, user=user)
    code = enrolment.recovery_codes[0]
    assert admin_login(client, user.email, PASSWORD, code).status_code == 302
    assert client.get("/admin/").status_code == 200
    client.logout()
    again = admin_login(client, user.email, PASSWORD, code)
    assert again.status_code == 200 and "That code is not right" in again.content.decode()


def test_a_staff_password_alone_never_opens_the_admin(client):
    user = staff_user(BILLING)
    staff_otp_enrol(acting_user=None, user=user)
    # Logged in through the customer login (password only): the admin asks for the code.
    assert login(client, user.email, PASSWORD, "127.0.0.1").status_code == 302
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    page = client.get(response["Location"]).content.decode()
    assert "the admin also needs the code of your authenticator app" in page
    # A staff login never enrolled cannot get in at all.
    bare = staff_user(SUPPORT)
    client.logout()
    assert admin_login(client, bare.email, PASSWORD, "123456").status_code == 200
    assert client.get("/admin/").status_code == 302


def test_wrong_codes_count_as_failed_logins(client, settings):
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 4
    settings.AXES_FAILURE_LIMIT = 100
    user = staff_user(SUPPORT)
    staff_otp_enrol(acting_user=None, user=user)
    right = totp_code(user)
    wrong = "000000" if right != "000000" else "111111"
    with time_machine.travel(START, tick=False):
        for _ in range(4):
            admin_login(client, user.email, PASSWORD, wrong)
        refused = admin_login(client, user.email, PASSWORD, totp_code(user))
    assert "Too many failed logins for this email" in refused.content.decode()
    assert client.get("/admin/").status_code == 302


def test_demo_staff_logins_come_with_the_secret_in_the_readme(client, db):
    from pathlib import Path

    from demo.accounts import DEMO_PASSWORD, DEMO_TOTP_SECRET, seed_demo_accounts

    seed_demo_accounts()
    seed_demo_accounts()  # idempotent: the secret stays the one documented
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert DEMO_TOTP_SECRET in readme
    for email in ("staff@portal.example", "billing@portal.example", "admin@portal.example"):
        response = admin_login(client, email, DEMO_PASSWORD, totp_code(DEMO_TOTP_SECRET))
        assert response.status_code == 302, email
        assert client.get("/admin/").status_code == 200
        client.logout()
