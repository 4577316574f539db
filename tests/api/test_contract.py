"""The contract: `schemathesis run --checks all` against the running API finds nothing
(issue 26). The API runs as it does for customers (pytest-django's live server on a free
port, real PostgreSQL), with a license that has purchases, calls of every service, a
refund and a credit, and a real key of it; schemathesis is the command customers would run
themselves, every check on: no 5xx; every status, content type, header and body as the
document says; every request the document allows accepted (positive_data_acceptance);
every request it does not allow refused (negative_data_rejection); other methods 405
with Allow; no key 401 (ignored_auth); the links between operations followed (stateful).

Deterministic for CI: a fixed seed, derandomized generation, no example database, one
worker. Bounded: MAX_EXAMPLES per operation and phase (about a minute and a half on two
quiet cores)."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from api.services import api_key_create
from tests.accounts.factories import LicenseFactory, UserFactory
from tests.ledger import buy, charge, record, refund, usage_entry

MAX_EXAMPLES = 25
SEED = 26


@pytest.fixture
def contract_key(transactional_db: None) -> str:
    """A key of a license with a little of everything, committed for the live server."""
    license = LicenseFactory(name="Contract Co", key="CONTRACT-0001", timezone="Asia/Kolkata")
    billing: User = UserFactory(email="billing@contract.example")
    now = timezone.now()
    buy(license, "20.00", at=now - timedelta(days=40))
    charge(
        license,
        *(
            record(
                now - timedelta(days=i * 7, hours=i),
                input_tokens=1000 * i + 7,
                cached_tokens=50 * i,
                completion_tokens=333,
                images=i % 3,
                endpoint=("/v1/chat/completions", "/v1/images/generate", "")[i % 3],
                record_id=f"contract-{i}",
                request_id=f"req-contract-{i}",
            )
            for i in range(8)
        ),
    )
    refund(license, usage_entry(license, "contract-2", "ai_data"), "0.000100", billing)
    refund(license, None, "1.00", billing, reason="goodwill")
    _, raw = api_key_create(acting_user=None, license=license, name="contract")
    return raw


def test_schemathesis_run_checks_all_finds_nothing(
    contract_key: str, live_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    # The generated requests are one client's thousands: not a client to limit here (the
    # limits' own tests hold them; a 429 would still pass every check).
    settings.API_RATE_LIMIT = 1_000_000
    settings.HISTORY_CSV_RATE_LIMIT = 1_000_000
    settings.HISTORY_CSV_LICENSE_RATE_LIMIT = 1_000_000
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{live_server.url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {contract_key}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-deterministic",  # and so no example database
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "No issues found" in report, report
