"""PostgreSQL restarted in the middle of a refund: the refund is either whole or absent,
and issuing it again (the same form, the same idempotency key) records it exactly once.
Runs against a private PostgreSQL cluster; part of the fault suite (`pytest -m faults`)."""

import subprocess
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.processes import PYTHON, ROOT, child_env, manage
from tests.services import migrated_private_postgres, private_child, wait_until_blocked_by

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def private_postgres():
    yield from migrated_private_postgres()


def test_a_refund_cut_off_by_a_postgres_restart_leaves_no_trace_and_a_retry_records_it_once(
    private_postgres,
):
    key = "REFUNDPG-001"
    private_child(private_postgres, "license_create", key)
    seeded = private_child(private_postgres, "charge_create", key)
    before = private_child(private_postgres, "refund_state", key)
    charge, amount, idempotency_key = str(seeded["charge"]), "0.250000", "faultrefund0001"

    # Hold the charge row: the refund gets as far as inserting its entry (the refund
    # ceiling trigger locks the charge) and waits there, in the middle of its transaction.
    holder = private_postgres.connect()
    holder.execute("SELECT 1 FROM billing_ledgerentry WHERE id = %s FOR UPDATE", [int(charge)])
    refund = subprocess.Popen(
        [PYTHON, "-m", "tests.private_child", "refund", key, charge, idempotency_key, amount],
        cwd=ROOT, env=child_env(private_postgres.url),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with private_postgres.connect(autocommit=True) as watcher:
            wait_until_blocked_by(watcher, holder, message="the refund to wait on the charge")
        private_postgres.restart()
        holder.close()
    finally:
        output = refund.communicate(timeout=60)[0].decode()
    assert refund.returncode != 0, output  # the person saw an error, not a success

    # No trace: no entry, no audit row, the balance as it was.
    assert private_child(private_postgres, "refund_state", key) == before

    # Submitting the same form again records it; a third submit changes nothing.
    assert private_child(private_postgres, "refund", key, charge, idempotency_key, amount)[
        "created"
    ]
    assert not private_child(private_postgres, "refund", key, charge, idempotency_key, amount)[
        "created"
    ]
    after = private_child(private_postgres, "refund_state", key)
    assert after["refunds"] == 1 and after["audits"] == 1
    assert Decimal(after["refunded"]) == Decimal(amount)
    assert Decimal(after["balance"]) == Decimal(before["balance"]) + Decimal(amount)
    for month in sorted({"2026-11", f"{datetime.now(tz=UTC):%Y-%m}"}):  # the charge, the refund
        result = manage("reconcile_ledger", "--month", month, env=child_env(private_postgres.url))
        assert result.returncode == 0, result.stdout + result.stderr
