import pytest
from django.core import mail

from accounts.models import License, User
from tests.accounts.factories import PASSWORD, LicenseFactory, MembershipFactory, UserFactory
from tests.matching import search

pytestmark = pytest.mark.django_db


def test_login_matches_email_case_insensitively(client, member_a, license_a):
    response = client.post(
        "/accounts/login/", {"username": "ANN@Alpha.Example", "password": PASSWORD}
    )
    assert response.status_code == 302
    # One license: home goes straight to its dashboard.
    home = client.get("/")
    assert home.status_code == 302
    assert home["Location"] == f"/l/{license_a.public_id}/"


def test_wrong_password_says_so_and_does_not_log_in(client, member_a):
    response = client.post("/accounts/login/", {"username": member_a.email, "password": "nope"})
    assert response.status_code == 200
    assert "do not match a login" in response.content.decode()
    assert client.get("/").status_code == 302  # still anonymous: sent to login
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_user_emails_are_unique_whatever_the_case(db):
    User.objects.create_user(email="Dup@Example.com", password=PASSWORD)
    with pytest.raises(Exception, match=r"unique|duplicate"):
        User.objects.create_user(email="dup@EXAMPLE.com", password=PASSWORD)


def test_logout_is_post_only(client_a):
    assert client_a.get("/accounts/logout/").status_code == 405
    assert client_a.post("/accounts/logout/").status_code == 302
    assert client_a.get("/")["Location"].startswith("/accounts/login/")


def test_login_with_several_licenses_gets_the_switcher(client, db):
    user = UserFactory(email="carol@multi.example")
    first = MembershipFactory(user=user, license=LicenseFactory(name="First Co")).license
    second = MembershipFactory(user=user, license=LicenseFactory(name="Second Co")).license
    LicenseFactory(name="Not Carols Co")
    client.force_login(user)
    page = client.get("/").content.decode()
    assert f"/l/{first.public_id}/" in page
    assert f"/l/{second.public_id}/" in page
    assert "Not Carols Co" not in page


def test_password_reset_link_works_once(client, member_a, celery_eager):
    client.post("/accounts/password/reset/", {"email": "ANN@alpha.example"})
    assert len(mail.outbox) == 1
    link = search(r"https?://[^/]+(/accounts/password/reset/\S+/)", str(mail.outbox[0].body))[1]
    form_page = client.get(link, follow=True)
    set_url = form_page.redirect_chain[-1][0]
    new_password = "a-brand-new-passphrase-42"
    done = client.post(set_url, {"new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302
    login = client.post("/accounts/login/", {"username": member_a.email, "password": new_password})
    assert login.status_code == 302
    client.logout()
    again = client.get(link, follow=True)
    assert "no longer valid" in again.content.decode()


def test_password_change_needs_the_old_password(client_a, member_a):
    response = client_a.post(
        "/accounts/password/",
        {
            "old_password": "wrong",
            "new_password1": "x-new-pass-777",
            "new_password2": "x-new-pass-777",
        },
    )
    assert response.status_code == 200
    assert "Old password" in response.content.decode()
    member_a.refresh_from_db()
    assert member_a.check_password(PASSWORD)


def test_suspended_license_still_shows_dashboard_with_notice(client_a, license_a):
    License.objects.filter(pk=license_a.pk).update(status=License.Status.SUSPENDED)
    response = client_a.get(f"/l/{license_a.public_id}/")
    assert response.status_code == 200
    assert "This license is suspended" in response.content.decode()


def test_closed_license_says_plainly_it_is_closed(client_a, license_a):
    License.objects.filter(pk=license_a.pk).update(status=License.Status.CLOSED)
    response = client_a.get(f"/l/{license_a.public_id}/")
    assert response.status_code == 403
    assert "This license is closed" in response.content.decode()


def test_dashboard_shows_account_overview(client_a, license_a, member_a):
    from tests.accounts.factories import DomainFactory

    DomainFactory(license=license_a, hostname="alpha.example", is_primary=True)
    DomainFactory(license=license_a, hostname="api.alpha.example")
    page = client_a.get(f"/l/{license_a.public_id}/").content.decode()
    assert member_a.email in page
    assert "alpha.example" in page and "api.alpha.example" in page
    assert license_a.get_license_type_display() in page
    assert license_a.member_since.strftime("%b") in page
