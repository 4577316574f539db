import pytest
from django.core.management import call_command

from accounts.models import Membership
from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory


@pytest.fixture
def alice_license(db):
    return LicenseFactory(name="Acme Corp", key="ACME-PRO-0001", timezone="America/New_York")


@pytest.fixture
def bob_license(db):
    return LicenseFactory(name="Globex Inc", key="GLOBEX-STD-0002")


@pytest.fixture
def alice(alice_license):
    return MembershipFactory(
        license=alice_license,
        user=UserFactory(email="alice@acme.example"),
        role=Membership.Role.OWNER,
    ).user


@pytest.fixture
def make_key(capsys):
    """A key as operations make one: `manage.py api_key_create` prints it once."""

    def make(license, name="integration"):
        capsys.readouterr()
        call_command("api_key_create", license=license.key, name=name)
        return capsys.readouterr().out.strip()

    return make


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
