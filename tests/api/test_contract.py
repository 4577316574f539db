"""The contract: schemathesis generates requests for every operation of
/api/v1/openapi.json and checks each answer against the document — no 5xx, the documented
status codes, content types, headers and response schemas.

Requests carry a valid key; the license path parameter is the key's own license for most
generated cases (so the 200 schemas are exercised) and a generated one otherwise (404).
Examples per operation are kept small so `make test` stays quick.
"""

import random
from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings

from api.services import api_key_create
from billing.charges.services import UsageRecord, usage_record_batch
from portal.wsgi import application
from tests.accounts.factories import LicenseFactory
from tests.ledger import buy

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture
def keyed_license(db):
    license = LicenseFactory(name="Contract Co", key="CONTRACT-0001", timezone="Asia/Kolkata")
    buy(license, "20.00")
    now = timezone.now()
    usage_record_batch(
        license=license,
        records=[
            UsageRecord(
                id=f"c{i}",
                occurred_at=now - timedelta(days=i),
                input_tokens=1000 * i + 7,
                completion_tokens=333,
                images=i % 2,
            )
            for i in range(6)
        ],
    )
    _, raw = api_key_create(acting_user=None, license=license, name="contract")
    return license, raw


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_keeps_the_contract(case, keyed_license, settings_override):
    license, raw = keyed_license
    params = case.path_parameters
    if params is not None and "license_id" in params and random.random() < 0.8:
        params["license_id"] = str(license.public_id)
    case.call_and_validate(headers={"Authorization": f"Bearer {raw}"})


@pytest.fixture
def settings_override(settings):
    settings.API_RATE_LIMIT = 100_000  # the generated requests are not a client to limit
    # The WSGI handler closes the database connection after each request, which would end
    # the test's transaction; Django's own test client keeps it open the same way.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
