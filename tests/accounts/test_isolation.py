"""Tenant isolation: every customer URL, generated from the URL conf, is a 404 for a login
that is not a member of the license in it, and a login redirect for anonymous visitors.

A URL added later is covered automatically; a customer view that does not resolve its
license through LicenseMixin fails `test_every_customer_view_uses_the_license_mixin`.
"""

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, UUIDConverter

from accounts.mixins import LicenseMixin

SAMPLE_BY_CONVERTER = {IntConverter: "1", UUIDConverter: str(uuid.uuid4())}


def _walk(resolver, prefix="", converters=None):
    converters = dict(converters or {})
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        merged = {**converters, **getattr(pattern, "converters", {})}
        route = prefix + str(pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry, route, merged)
        elif isinstance(entry, URLPattern):
            yield route, merged, entry


def customer_patterns():
    """(route, converters, pattern) for every URL that takes a license id."""
    return [p for p in _walk(get_resolver()) if "<uuid:license_id>" in p[0]]


def build_path(route: str, converters: dict, license_id) -> str:
    """A concrete path for a route: the given license id, plausible values elsewhere."""

    def sample(match: re.Match) -> str:
        name = match.group("name")
        if name == "license_id":
            return str(license_id)
        return SAMPLE_BY_CONVERTER.get(type(converters.get(name)), "x")

    return "/" + re.sub(r"<(?:[a-z]+:)?(?P<name>\w+)>", sample, route)


ROUTES = customer_patterns()
IDS = [route for route, _c, _p in ROUTES]


def test_the_walk_finds_the_customer_urls():
    assert any(route.endswith("<uuid:license_id>/") for route in IDS), IDS


def test_every_customer_view_uses_the_license_mixin():
    offenders = [
        route
        for route, _c, pattern in ROUTES
        if not issubclass(getattr(pattern.callback, "view_class", object), LicenseMixin)
    ]
    assert offenders == []


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "converters", "pattern"), ROUTES, ids=IDS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_other_license_is_404(client_a, license_b, route, converters, pattern, method):
    path = build_path(route, converters, license_b.public_id)
    response = getattr(client_a, method)(path)
    assert response.status_code == 404, path
    body = response.content.decode()
    assert license_b.name not in body
    assert license_b.key not in body


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "converters", "pattern"), ROUTES, ids=IDS)
def test_unknown_license_is_the_same_404(client_a, route, converters, pattern):
    response = client_a.get(build_path(route, converters, uuid.uuid4()))
    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "converters", "pattern"), ROUTES, ids=IDS)
def test_anonymous_is_sent_to_login(client, license_a, route, converters, pattern):
    path = build_path(route, converters, license_a.public_id)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
def test_own_license_dashboard_opens(client_a, license_a):
    response = client_a.get(f"/l/{license_a.public_id}/")
    assert response.status_code == 200
    assert license_a.name in response.content.decode()


@pytest.mark.django_db
def test_a_removed_member_or_a_deactivated_login_is_refused_at_the_next_page(
    client_a, member_a, license_a
):
    # The license, the role and the switcher are read once per request, never kept for a
    # session: the page right after the change refuses.
    url = reverse("dashboard:overview", kwargs={"license_id": license_a.public_id})
    assert client_a.get(url).status_code == 200
    license_a.memberships.filter(user=member_a).delete()
    assert client_a.get(url).status_code == 404

    license_a.memberships.create(user=member_a, role="member")
    assert client_a.get(url).status_code == 200
    member_a.is_active = False
    member_a.save(update_fields=["is_active"])
    response = client_a.get(url)
    assert response.status_code == 302 and "login" in response.url


@pytest.mark.django_db
def test_the_viewers_role_is_read_on_each_page(client_a, member_a, license_a):
    """A member made owner sees the owner's pages at once, and loses them at once."""
    url = reverse("dashboard:alert_settings", kwargs={"license_id": license_a.public_id})
    membership = license_a.memberships.get(user=member_a)
    membership.role = "member"
    membership.save(update_fields=["role"])
    assert client_a.get(url).status_code == 403
    membership.role = "owner"
    membership.save(update_fields=["role"])
    assert client_a.get(url).status_code == 200
    membership.role = "member"
    membership.save(update_fields=["role"])
    assert client_a.get(url).status_code == 403


@pytest.mark.django_db
def test_license_access_is_the_logins_own_membership_and_nothing_of_others():
    from django.http import Http404

    from accounts.models import Membership
    from accounts.selectors import license_access_get
    from tests.accounts.factories import DomainFactory, LicenseFactory, MembershipFactory

    shared = LicenseFactory(name="B shared")
    DomainFactory(license=shared, hostname="z.shared.example", is_primary=False)
    DomainFactory(license=shared, hostname="a.shared.example", is_primary=True)
    own = LicenseFactory(name="A own")
    stranger = LicenseFactory(name="C stranger")
    member = MembershipFactory(license=shared, role=Membership.Role.MEMBER).user
    MembershipFactory(license=own, user=member, role=Membership.Role.OWNER)
    # Another login owns the shared license: its role is not the member's.
    MembershipFactory(license=shared, role=Membership.Role.OWNER)
    MembershipFactory(license=stranger, role=Membership.Role.OWNER)

    access = license_access_get(user=member, public_id=shared.public_id)
    assert (access.license, access.role) == (shared, Membership.Role.MEMBER)
    assert access.domains == ["a.shared.example", "z.shared.example"]  # primary first
    assert access.others == [own]  # by name, never a license of another login
    assert license_access_get(user=member, public_id=str(own.public_id)).role == "owner"
    for public_id in (stranger.public_id, uuid.uuid4(), "not-a-uuid"):
        with pytest.raises(Http404):
            license_access_get(user=member, public_id=public_id)
