import pytest
from django.contrib.auth.models import Group

from accounts.roles import BILLING, SUPPORT
from tests.accounts.factories import UserFactory
from tests.conftest import staff_force_login


def _staff_login(client, *, email, group=None, superuser=False):
    user = UserFactory(email=email, is_staff=True, is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    staff_force_login(client, user)
    return user


@pytest.fixture
def billing_client(client, db):
    """A client logged in as a Billing-role staff login; .user is the login."""
    client.user = _staff_login(client, email="bill@portal.example", group=BILLING)
    return client


@pytest.fixture
def support_client(client, db):
    client.user = _staff_login(client, email="sue@portal.example", group=SUPPORT)
    return client


@pytest.fixture
def root_client(client, db):
    client.user = _staff_login(client, email="root@portal.example", superuser=True)
    return client


@pytest.fixture
def billing_user(db):
    user = UserFactory(email="billing-actor@portal.example", is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING))
    return user
