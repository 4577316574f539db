import pytest

from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def license_a(db):
    return LicenseFactory(name="Alpha Corp", key="ALPHA-000001")


@pytest.fixture
def license_b(db):
    return LicenseFactory(name="Bravo Secret Inc", key="BRAVO-000002")


@pytest.fixture
def member_a(license_a):
    return MembershipFactory(license=license_a, user=UserFactory(email="ann@alpha.example")).user


@pytest.fixture
def member_b(license_b):
    return MembershipFactory(license=license_b, user=UserFactory(email="ben@bravo.example")).user


@pytest.fixture
def client_a(client, member_a):
    client.force_login(member_a)
    return client


@pytest.fixture
def celery_eager():
    """Run tasks in-process, as a worker would run them, for tests about their effects."""
    from portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
