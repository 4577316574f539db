"""The staff license page's balance box states the whole bridge (issue 26): every movement
with its sign, from opening 0 to the balance shown, equal to the ledger; paid and
promotional credit and what expires next; and which timezone its times are in. Read out of
the rendered page."""

import re
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from accounts.models import License
from accounts.roles import SUPPORT
from billing.ledger.kinds import MOVEMENTS
from tests.accounts.factories import UserFactory
from tests.bridge_license import (
    AFTER,
    NEXT_EXPIRY,
    PAID,
    PROMOTIONAL,
    assert_bridge,
    license_with_every_movement,
    texts_by,
)
from tests.conftest import staff_force_login
from tests.matching import search

pytestmark = pytest.mark.django_db


@pytest.fixture
def every_movement(db: None) -> License:
    return license_with_every_movement(name="Bridge Co")


def license_page(client: Client, license: License) -> str:
    user = UserFactory(email="sue@portal.example", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT))
    with time_machine.travel(AFTER, tick=False):
        staff_force_login(client, user)
        response = client.get(reverse("admin:accounts_license_change", args=[license.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_balance_box_states_every_term_and_adds_up_to_the_balance(
    client: Client, every_movement: License
) -> None:
    html = license_page(client, every_movement)
    box = html.split('id="p-balance"', 1)[1].split("</section>", 1)[0]
    shown = texts_by(box, "data-term")
    # Each term with the sign its label carries ("+ Purchased", "− Refunded to the card").
    signed = {term: sign for sign, term in re.findall(
        r'<dt>([+−]) [^<]+</dt><dd data-term="([a-z_]+)"', box
    )}  # fmt: skip
    terms = {
        m.term: (-1 if signed[m.term] == "−" else 1) * Decimal(shown[m.term]) for m in MOVEMENTS
    }
    assert Decimal(shown["opening"]) == 0
    balance = Decimal(search(r"data-balance>([^<]+)<", box)[1])
    assert Decimal(shown["closing"]) == balance
    assert_bridge(terms, balance, every_movement)
    # The words a person reads beside each figure are the movement's, with its sign.
    for movement in MOVEMENTS:
        sign = "+" if movement.sign > 0 else "−"
        assert f"<dt>{sign} {movement.total_label.capitalize()}</dt>" in box


def test_the_balance_box_splits_paid_and_promotional_and_names_its_timezone(
    client: Client, every_movement: License
) -> None:
    box = license_page(client, every_movement).split('id="p-balance"', 1)[1]
    box = box.split("</section>", 1)[0]
    credit = texts_by(box, "data-credit")
    assert (Decimal(credit["paid"]), Decimal(credit["promotional"])) == (PAID, PROMOTIONAL)
    assert credit["next-expiry"] == f"{NEXT_EXPIRY:.6f} at 2025-08-01 00:00 EDT"
    assert "Times in the license's timezone, America/New_York" in box
