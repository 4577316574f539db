"""A license with every movement of the balance bridge (issue 26), for the surfaces that
explain a balance, and the checks those surfaces share: the figures a surface shows,
read back from what it rendered, must satisfy the bridge and equal the ledger.

Made through the services (nothing inserted by hand): a purchase, a goodwill credit by the
billing team, a card purchase and a refund of part of it to the card, usage and a refund of
part of a charge, a promotional grant that expires unused, and a promotional grant still
open (what expires next). In America/New_York, all before `AFTER`."""

import re
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser

import time_machine
from django.contrib.auth.models import Group

from accounts.models import License, User
from accounts.roles import BILLING
from billing.credits.expiry import credits_expire
from billing.credits.services import credit_grant_issue
from billing.ledger.kinds import MOVEMENTS
from billing.models import LedgerEntry
from billing.purchases.refunds import purchase_refund_record
from tests.accounts.factories import LicenseFactory, UserFactory
from tests.ledger import buy, refund, spend

D = Decimal
# When the surfaces are looked at: after everything below, before the open grant's expiry.
AFTER = datetime(2025, 6, 25, 16, tzinfo=UTC)

# The bridge this license must show (lifetime, opening 0).
EXPECTED = {
    "purchases": D("30"),  # $20 + the $10 card purchase, gross
    "purchase_refunds": D("4"),
    "credits": D("10"),  # $5 goodwill + $2 promotional (expired) + $3 promotional (open)
    "usage_refunds": D("1"),
    "usage": D("4.5"),
    "expired": D("2"),
}
BALANCE = D("30.5")
# Promotional credit is used first, the soonest to expire first: the June $3 (less $1
# given back) came from the goodwill, the only credit then; the $1.5 of June 22 from the
# promotion dated Jul 31, before the undated goodwill. The card refund took $4 of the card
# purchase's paid grant.
PAID = D("26")
PROMOTIONAL = D("4.5")  # $3 left of the goodwill + $1.5 of the open promotion
NEXT_EXPIRY = D("1.5")  # what is left of the open promotion, usable until the end of Jul 31


def _grant(license: License, by: User, amount: str, key: str, expires_at: datetime) -> None:
    credit_grant_issue(
        acting_user=by,
        license=license,
        amount=D(amount),
        kind="promotional",
        reason="summer promotion",
        idempotency_key=key,
        expires_at=expires_at,
    )


def billing_member(email: str = "bridge-billing@portal.example") -> User:
    """A staff login of the Billing role (who grants credit and refunds)."""
    user = UserFactory(email=email, is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING))
    return user


def license_with_every_movement(billing_user: User | None = None, **fields: object) -> License:
    billing_user = billing_user or billing_member()
    license = LicenseFactory(timezone="America/New_York", **fields)
    tz = license.tzinfo
    buy(license, "20", at=datetime(2025, 5, 10, 12, tzinfo=tz))
    with time_machine.travel(datetime(2025, 6, 2, 12, tzinfo=tz), tick=False):
        refund(license, None, "5", billing_user, reason="goodwill: our outage")
    card = buy(license, "10", f"pi:pi_{license.pk}_june", at=datetime(2025, 6, 3, 12, tzinfo=tz))
    with time_machine.travel(datetime(2025, 6, 4, 12, tzinfo=tz), tick=False):
        spend(license, "3")
    charge = LedgerEntry.objects.for_license(license).get(kind="usage")
    with time_machine.travel(datetime(2025, 6, 5, 12, tzinfo=tz), tick=False):
        refund(license, charge, "1", billing_user, reason="a failed call")
    with time_machine.travel(datetime(2025, 6, 6, 12, tzinfo=tz), tick=False):
        purchase_refund_record(
            license=license,
            purchase=card.entry,
            amount=D("4"),
            external_id=f"re:{license.pk}_june",
            reason="asked for part back",
        )
    with time_machine.travel(datetime(2025, 6, 7, 12, tzinfo=tz), tick=False):
        _grant(
            license, billing_user, "2", f"promo-june-{license.pk}", datetime(2025, 6, 20, tzinfo=tz)
        )
        _grant(
            license, billing_user, "3", f"promo-july-{license.pk}", datetime(2025, 8, 1, tzinfo=tz)
        )
    with time_machine.travel(datetime(2025, 6, 21, tzinfo=tz), tick=False):
        credits_expire()
    with time_machine.travel(datetime(2025, 6, 22, 12, tzinfo=tz), tick=False):
        spend(license, "1.5")
    return license


def ledger_sum(license: License) -> Decimal:
    return sum((e.amount for e in LedgerEntry.objects.for_license(license)), D(0))


_AMOUNT = re.compile(r"^(-?)\$([0-9,]+\.[0-9]{6})$")


def amount_of(text: str) -> Decimal:
    """An amount as a page writes it ("$1,234.567890", "-$0.500000")."""
    match = _AMOUNT.match(text.strip())
    assert match, f"not an amount: {text!r}"
    return D(match[2].replace(",", "")) * (-1 if match[1] else 1)


def assert_bridge(terms: dict[str, Decimal], closing: Decimal, license: License) -> None:
    """Terms read from a surface (signed as it showed them, by bridge term): opening 0 plus
    them is the closing it showed, which is the ledger's sum; each term is the expected one."""
    assert set(terms) <= {m.term for m in MOVEMENTS}
    assert {t: abs(v) for t, v in terms.items() if v} == {t: v for t, v in EXPECTED.items() if v}
    assert D(0) + sum(terms.values(), D(0)) == closing == ledger_sum(license) == BALANCE


class _Texts(HTMLParser):
    """The text of each element carrying `attribute` (its value → its text)."""

    VOID = {"br", "img", "input", "meta", "link", "hr", "col", "area", "source", "wbr"}

    def __init__(self, attribute: str):
        super().__init__(convert_charrefs=True)
        self.attribute = attribute
        self.open: list[tuple[str, str | None]] = []  # (tag, the attribute's value or None)
        self.texts: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        value = dict(attrs).get(self.attribute)
        if value is not None:
            self.texts.setdefault(value, [])
        self.open.append((tag, value))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, value in self.open:
            if value is not None:
                self.texts[value].append(data)


def texts_by(html: str, attribute: str) -> dict[str, str]:
    """{value: visible text} of the elements of `html` carrying `attribute` (the first of
    each value), whitespace collapsed."""
    parser = _Texts(attribute)
    parser.feed(html)
    return {k: " ".join("".join(v).split()) for k, v in parser.texts.items()}


_WORDS = {m.total_label: m.term for m in MOVEMENTS}
_TERM = re.compile(r"(?:^|([+−]) )(-?\$[0-9,]+\.[0-9]{6}) ([a-z ]+?)(?= [+−] |$)")


def bridge_from_line(line: str) -> tuple[dict[str, Decimal], Decimal]:
    """A written bridge, "$30.000000 purchased − $4.000000 refunded to the card … =
    $30.500000": each term signed as written, by the bridge term its words name, and the
    closing."""
    left, closing = line.rsplit(" = ", 1)
    terms: dict[str, Decimal] = {}
    position = 0
    for match in _TERM.finditer(left):
        assert match.start() == position, f"unread text in {left!r} at {position}"
        sign = -1 if match[1] == "−" else 1
        terms[_WORDS[match[3]]] = sign * amount_of(match[2])
        position = match.end() + 1
    assert position >= len(left), f"unread text at the end of {left!r}"
    return terms, amount_of(closing)
