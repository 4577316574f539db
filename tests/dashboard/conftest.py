"""The billing logins of tests/billing, for the pages that span both sides."""

from tests.billing.conftest import billing_client, billing_user, support_client  # noqa: F401
