from typing import cast

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import User
from accounts.roles import BILLING, SUPPORT
from tests.accounts.factories import UserFactory
from tests.conftest import staff_force_login


class StaffClient(Client):
    """The test client of a staff login; `.user` is the login (set on pytest-django's
    `client` by the fixtures below, so a test's `client` is the same one)."""

    user: User


def _staff_login(
    client: Client, *, email: str, group: str | None = None, superuser: bool = False
) -> StaffClient:
    user = UserFactory(email=email, is_staff=True, is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    staff_force_login(client, user)
    staff = cast(StaffClient, client)
    staff.user = user
    return staff


@pytest.fixture
def billing_client(client: Client, db: None) -> StaffClient:
    """A client logged in as a Billing-role staff login; .user is the login."""
    return _staff_login(client, email="bill@portal.example", group=BILLING)


@pytest.fixture
def support_client(client: Client, db: None) -> StaffClient:
    return _staff_login(client, email="sue@portal.example", group=SUPPORT)


@pytest.fixture
def root_client(client: Client, db: None) -> StaffClient:
    return _staff_login(client, email="root@portal.example", superuser=True)


@pytest.fixture
def billing_user(db: None) -> User:
    user = UserFactory(email="billing-actor@portal.example", is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING))
    return user
