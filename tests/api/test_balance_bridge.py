"""The API's balance states the whole bridge (issue 26): one figure per movement, which add
up to the balance and to the ledger; paid and promotional credit and what expires next; the
older fields kept, with their documented meaning (Total Purchased gross)."""

from datetime import datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from accounts.models import License
from api.services import api_key_create
from api.v1 import api
from billing.ledger.kinds import MOVEMENTS
from billing.models import LedgerEntry
from tests.api.conftest import bearer
from tests.bridge_license import (
    AFTER,
    BALANCE,
    NEXT_EXPIRY,
    PAID,
    PROMOTIONAL,
    assert_bridge,
    license_with_every_movement,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def every_movement(db: None) -> License:
    return license_with_every_movement(name="Bridge Co")


def balance_json(client: Client, license: License) -> dict:
    with time_machine.travel(AFTER, tick=False):
        _, raw = api_key_create(acting_user=None, license=license, name="bridge")
        response = client.get(f"/api/v1/licenses/{license.public_id}/balance", **bearer(raw))
    assert response.status_code == 200, response.content
    return response.json()


def test_the_balance_answer_adds_up_from_every_movement(
    client: Client, every_movement: License
) -> None:
    body = balance_json(client, every_movement)
    # Signed as the bridge the answer documents: each movement's sign.
    terms = {m.term: m.sign * Decimal(body[m.term]) for m in MOVEMENTS}
    assert_bridge(terms, Decimal(body["balance"]), every_movement)
    assert all(Decimal(body[m.term]) >= 0 for m in MOVEMENTS)


def test_paid_promotional_and_the_next_expiry(client: Client, every_movement: License) -> None:
    body = balance_json(client, every_movement)
    assert (Decimal(body["paid"]), Decimal(body["promotional"])) == (PAID, PROMOTIONAL)
    assert Decimal(body["paid"]) + Decimal(body["promotional"]) == Decimal(body["balance"])
    assert body["next_expiry"]["amount"] == f"{NEXT_EXPIRY:.6f}"
    # Given until Jul 31 in New York: it leaves at the local midnight after it.
    assert datetime.fromisoformat(body["next_expiry"]["at"]) == datetime(
        2025, 8, 1, tzinfo=every_movement.tzinfo
    )
    assert body["next_expiry"]["at"].endswith("-04:00")


def test_the_older_fields_keep_their_documented_meaning(
    client: Client, every_movement: License
) -> None:
    body = balance_json(client, every_movement)
    assert body["total_purchased"] == body["purchases"] == "30.000000"  # gross
    assert body["total_spent"] == body["usage"]
    assert body["total_refunded"] == body["usage_refunds"]  # goodwill is in credits
    entries = LedgerEntry.objects.for_license(every_movement)
    assert body["transactions"] == entries.count()  # ledger lines, as the dashboard counts
    assert body["api_calls"] == sum(e.api_calls for e in entries) == 2
    assert Decimal(body["balance"]) == BALANCE


def test_the_document_names_every_term_and_the_bridge() -> None:
    schema = api.get_openapi_schema()
    fields = schema["components"]["schemas"]["BalanceOut"]["properties"]
    for movement in MOVEMENTS:
        assert movement.total_label in fields[movement.term]["description"]
    described = schema["paths"]["/api/v1/licenses/{license_id}/balance"]["get"]["description"]
    assert (
        "balance = purchases − purchase_refunds + credits + usage_refunds − usage − expired"
        in described
    )
