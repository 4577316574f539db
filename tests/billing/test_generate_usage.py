import pytest
from django.core.management import call_command

from billing.models import LedgerEntry
from tests.ledger import assert_ledger_consistent, buy

pytestmark = pytest.mark.django_db


def test_generated_history_is_realistic_and_exactly_consistent(license_a):
    license_a.timezone = "America/New_York"
    license_a.save()
    buy(license_a, "3.00")  # entries already there are kept and counted
    call_command("generate_usage", license=license_a.key, entries=20000, days=90, seed=7)
    assert LedgerEntry.objects.for_license(license_a).count() == 20001
    kinds = set(LedgerEntry.objects.for_license(license_a).values_list("kind", flat=True))
    services = set(
        LedgerEntry.objects.for_license(license_a)
        .filter(kind="usage")
        .values_list("service", flat=True)
    )
    assert kinds == {"purchase", "usage", "credit"}  # generated goodwill is a credit (issue 14)
    assert services == {"ai_data", "ai_data_cached", "ai_data_completion", "ai_images"}
    assert_ledger_consistent(license_a)


def test_unknown_license_is_a_clear_error(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No license with key"):
        call_command("generate_usage", license="NOPE-000000", entries=10)
