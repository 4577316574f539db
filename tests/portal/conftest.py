"""Fixtures the portal-wide tests borrow from the apps' own test packages."""

from tests.api.conftest import bob_license, make_key  # noqa: F401
from tests.billing.conftest import billing_client  # noqa: F401
