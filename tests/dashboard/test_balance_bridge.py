"""The dashboard explains its balance with the whole bridge (issue 26): every movement the
license had, signed and named as billing defines it, adding up to the balance shown and to
the ledger; Total Purchased gross with the net beside it; the balance split into paid and
promotional credit with what expires next, in the license's time; and Total Transactions
counting ledger lines (as All transactions and the CSV list them), API calls apart. Every
figure is read out of the rendered page, not from the selector."""

import re
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from accounts.models import License, User
from billing.ledger.kinds import MOVEMENTS
from billing.models import LedgerEntry
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.bridge_license import (
    AFTER,
    BALANCE,
    NEXT_EXPIRY,
    PAID,
    PROMOTIONAL,
    amount_of,
    assert_bridge,
    bridge_from_line,
    ledger_sum,
    license_with_every_movement,
    texts_by,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def every_movement(billing_user: User) -> License:
    return license_with_every_movement(billing_user, name="Bridge Co")


def page_html(client: Client, license: License, name: str = "dashboard:overview") -> str:
    """The page as a member of the license sees it, at AFTER."""
    with time_machine.travel(AFTER, tick=False):
        if not License.objects.filter(pk=license.pk, memberships__isnull=False).exists():
            member = MembershipFactory(
                license=license, user=UserFactory(email="mia@bridge.example")
            )
            client.force_login(member.user)
        response = client.get(reverse(name, kwargs={"license_id": license.public_id}))
    assert response.status_code == 200
    return response.content.decode()


def dashboard_html(client: Client, license: License) -> str:
    return page_html(client, license)


def test_the_explanation_line_is_the_bridge_and_adds_up_to_the_balance(
    client: Client, every_movement: License
) -> None:
    html = dashboard_html(client, every_movement)
    shown = texts_by(html, "data-testid")
    terms, closing = bridge_from_line(shown["balance-bridge"])
    assert amount_of(shown["balance"]) == closing
    assert_bridge(terms, closing, every_movement)
    # The words and signs are the movements': a card refund and an expiry take away.
    assert shown["balance-bridge"] == (
        "$30.000000 purchased − $4.000000 refunded to the card + $10.000000 credited"
        " + $1.000000 refunded − $4.500000 spent − $2.000000 expired = $30.500000"
    )


def test_total_purchased_is_gross_with_the_net_beside_it(
    client: Client, every_movement: License
) -> None:
    shown = texts_by(dashboard_html(client, every_movement), "data-testid")
    assert amount_of(shown["total-purchased"]) == Decimal("30")
    assert shown["net-purchased"] == "$26.000000 net of $4.000000 refunded to the card"
    assert amount_of(shown["total-spent"]) == amount_of(shown["credits-used"]) == Decimal("4.5")


def test_the_balance_splits_into_paid_and_promotional_and_says_what_expires_next(
    client: Client, every_movement: License
) -> None:
    html = dashboard_html(client, every_movement)
    credit = texts_by(html, "data-credit")
    paid = amount_of(credit["paid"].removesuffix(" paid"))
    promotional = amount_of(credit["promotional"].removesuffix(" promotional"))
    assert (paid, promotional) == (PAID, PROMOTIONAL)
    assert paid + promotional == amount_of(texts_by(html, "data-testid")["balance"]) == BALANCE
    # Granted "until Jul 31" in New York: it leaves at the local midnight after it.
    assert credit["next-expiry"] == f"${NEXT_EXPIRY:.6f} expires at the end of Jul 31, 2025"


def test_transactions_are_ledger_lines_and_calls_are_counted_apart(
    client: Client, every_movement: License
) -> None:
    html = dashboard_html(client, every_movement)
    shown = texts_by(html, "data-testid")
    entries = LedgerEntry.objects.for_license(every_movement)
    assert int(shown["total-transactions"].replace(",", "")) == entries.count() == 10
    calls = sum(e.api_calls for e in entries)
    assert int(shown["api-calls"].replace(",", "")) == int(shown["analytics-calls"]) == calls
    spent = amount_of(shown["total-spent"])
    assert amount_of(shown["average"]) == (spent / entries.count()).quantize(Decimal("0.000001"))
    assert amount_of(shown["average-per-call"]) == (spent / calls).quantize(Decimal("0.000001"))
    # Recent Transaction History's "last 100" are ledger lines too: every one of the ten.
    recent = html.split('id="transactions-title"', 1)[1].split("</table>", 1)[0]
    assert recent.count("<tr") - 1 == entries.count()
    # Each line named as its movement: the card refund and the expiry as themselves.
    types = re.findall(r'<span class="type type--([a-z_]+)">([^<]+)</span>', recent)
    [refund_label] = [label for movement, label in types if movement == "purchase_refund"]
    purchase_number = refund_label.removeprefix("Refund of card purchase #")
    assert LedgerEntry.objects.for_license(every_movement).get(pk=int(purchase_number)).kind == (
        "purchase"
    )
    types = [(m, "Refund of card purchase" if m == "purchase_refund" else t) for m, t in types]
    assert sorted(types) == sorted(
        [("purchase", "Purchase"), ("purchase", "Purchase"), ("credit", "Credit"),
         ("credit", "Credit"), ("credit", "Credit"), ("usage", "Usage"), ("usage", "Usage"),
         ("usage_refund", "Refund"), ("purchase_refund", "Refund of card purchase"),
         ("expiry", "Expired credit")]
    )  # fmt: skip
    assert ledger_sum(every_movement) == BALANCE


def test_help_states_the_same_bridge_the_consumption_order_and_expiry(
    client: Client, every_movement: License
) -> None:
    """Help's sentence, applied to the figures the dashboard shows, gives the balance."""
    dashboard = texts_by(dashboard_html(client, every_movement), "data-testid")
    help_page = page_html(client, every_movement, "dashboard:help")
    sentence = texts_by(help_page, "data-testid")["help-bridge"]
    assert sentence == (
        "Current Balance = purchased − refunded to the card + credited + refunded − spent − expired"
    )
    signed_words = re.findall(r"(?:^|([+−]) )([a-z ]+?)(?= [+−] |$)", sentence.split(" = ")[1])
    shown, closing = bridge_from_line(dashboard["balance-bridge"])
    by_words = {m.total_label: abs(shown.get(m.term, Decimal(0))) for m in MOVEMENTS}
    total = sum(
        (-by_words[words] if sign == "−" else by_words[words] for sign, words in signed_words),
        Decimal(0),
    )
    assert len(signed_words) == len(MOVEMENTS) and total == closing == BALANCE
    text = " ".join(help_page.split())
    assert "promotional credit first</strong>, the credit that expires soonest first" in text
    assert "<strong>then paid credit</strong>" in text
    assert "leaves your balance as one <em>Expired credit</em> line" in text
    assert "Paid credit never expires unless a date was agreed with you." in text
