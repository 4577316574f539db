"""What operators read in the logs: one structured line per sync run and one per money
movement, carrying the figures they are asked about, and only for what really happened."""

import re
import shlex
from decimal import Decimal

import pytest

from billing.purchases.services import purchase_record
from billing.refunds.services import refund_issue
from portal.exceptions import ApplicationError
from portal.logfmt import logfmt
from tests.accounts.factories import UserFactory
from tests.ledger import record_usage, usage_entry
from tests.processes import profile_for
from usage.services.sync import usage_sync_license
from usage.simulator import Faults

pytestmark = pytest.mark.django_db(transaction=True)


def lines(caplog, logger: str, event: str) -> list[dict]:
    """The log lines of `logger` starting with `event`, parsed into their fields."""
    found = []
    for record in caplog.records:
        message = record.getMessage()
        if record.name == logger and re.match(rf"{re.escape(event)} \w+=", message):
            fields = dict(part.split("=", 1) for part in shlex.split(message[len(event) + 1 :]))
            found.append({"level": record.levelname, **fields})
    return found


def test_each_sync_logs_one_line_with_its_figures(start_simulator, license_a, caplog, settings):
    settings.UPSTREAM_PAGE_SIZE = 100
    start_simulator(
        profiles=[profile_for(license_a, days=1)],
        faults=Faults(repeat_share=0.5, malformed_share=0.05),
    )
    caplog.set_level("INFO")
    result = usage_sync_license(license=license_a, trigger="beat")
    [line] = lines(caplog, "usage.services.sync", "sync")
    assert line["level"] == "INFO"
    assert line["license"] == license_a.key and line["trigger"] == "beat"
    assert int(line["pages"]) == result.pages > 1
    assert int(line["records"]) == result.records_received
    assert int(line["charged"]) == result.records_charged > 0
    assert int(line["skipped"]) == result.records_duplicate > 0
    assert int(line["quarantined"]) == result.records_quarantined > 0
    assert line["complete"] == "true"
    assert float(line["duration_s"]) >= 0
    # Each page was a money movement: one usage line per page that charged something.
    usage_lines = lines(caplog, "billing.aftermath", "money usage")
    assert sum(int(u["records"]) for u in usage_lines) == result.records_charged
    assert all(u["license"] == license_a.key and Decimal(u["amount"]) <= 0 for u in usage_lines)


def test_a_failed_sync_logs_a_warning_with_the_reason(start_simulator, license_a, caplog):
    server = start_simulator(profiles=[profile_for(license_a, days=1)])
    server.stop()
    caplog.set_level("INFO")
    usage_sync_license(license=license_a, trigger="refresh")
    [line] = lines(caplog, "usage.services.sync", "sync failed")
    assert line["level"] == "WARNING"
    assert line["license"] == license_a.key and line["pages"] == "0"
    assert line["error"].startswith("Upstream refused the connection")
    assert "duration_s" in line


def test_purchases_and_refunds_log_a_line_once_committed(license_a, caplog):
    billing_user = UserFactory(email="bill@portal.example", is_staff=True)
    caplog.set_level("INFO")
    purchase_record(
        license=license_a, amount=Decimal("12.50"), external_id="pay-1", acting_user=billing_user
    )
    purchase_record(license=license_a, amount=Decimal("12.50"), external_id="pay-1")  # a repeat
    [bought] = lines(caplog, "billing.aftermath", "money purchase")
    assert bought["license"] == license_a.key and bought["amount"] == "12.500000"
    assert bought["balance"] == "12.500000" and bought["external_id"] == "pay-1"
    assert bought["by"] == str(billing_user.pk)

    record_usage(license_a, "call-1", input_tokens=1_000_000)
    charge = usage_entry(license_a, "call-1")
    refund_issue(
        acting_user=billing_user, license=license_a, amount=Decimal("0.10"),
        reason="test", idempotency_key="refund-key-0001", refund_of=charge,
    )  # fmt: skip
    # Refused (more than the charge): rolled back, so no line claims it happened.
    with pytest.raises(ApplicationError):
        refund_issue(
            acting_user=billing_user, license=license_a, amount=Decimal("5.00"),
            reason="test", idempotency_key="refund-key-0002", refund_of=charge,
        )  # fmt: skip
    [refunded] = lines(caplog, "billing.aftermath", "money refund")
    assert refunded["amount"] == "0.100000" and refunded["refund_of"] == str(charge.pk)
    assert refunded["entry"] and refunded["by"] == str(billing_user.pk)


def test_a_value_cannot_forge_a_log_line_or_a_field():
    line = logfmt("sync failed", license="A-1", error='bad\nsync license=EVIL charged=999 "x"')
    assert "\n" not in line
    fields = dict(part.split("=", 1) for part in shlex.split(line[len("sync failed ") :]))
    assert fields == {"license": "A-1", "error": 'bad\\nsync license=EVIL charged=999 "x"'}
