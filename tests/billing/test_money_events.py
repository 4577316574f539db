"""Money events (billing/events): what happened to money is written down in the posting
transaction and read by the apps above after commit, each consumer exactly once."""

from decimal import Decimal

import pytest
from django.db import connection, transaction

from payments.models import PaymentAccount, SavedCard
from tests.accounts.factories import LicenseFactory
from tests.ledger import buy, spend


def _locked_relations(prefix: str) -> list[tuple[str, str]]:
    """The relations this connection's transaction holds a lock on, whose names start so."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, l.mode FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation
            WHERE l.pid = pg_backend_pid() AND c.relname LIKE %s ORDER BY 1, 2
            """,
            [prefix + "%"],
        )
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_a_usage_page_posting_takes_no_lock_on_a_payments_table(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_no_call_is_made"
    license = LicenseFactory(key="LOCKS-000001")
    buy(license, "6.00")
    PaymentAccount.objects.create(
        license=license,
        auto_topup_enabled=True,
        auto_topup_threshold=Decimal("5"),
        auto_topup_amount=Decimal("10"),
        auto_topup_monthly_amount=Decimal("100"),
    )
    SavedCard.objects.create(
        license=license, payment_method_id="pm_locks", last4="4242", is_default=True
    )
    with transaction.atomic():
        spend(license, "2.00")  # $4.00: below the top-up line and the alert threshold
        billing = _locked_relations("billing_")
        payments = _locked_relations("payments_")
    assert ("billing_licensebalance", "RowShareLock") in billing  # the posting's own lock
    assert payments == []
