"""The money's kinds and the balance bridge: the one definition every surface derives its
words, signs and sums from (DESIGN.md: Ledger entry, Bridge; invariants 1 and 13).

A ledger entry is one of six movements, in the bridge's order:

    opening + purchases − purchase refunds + credits + usage refunds − usage − expired
        = closing

The ledger stores five kinds (`LedgerEntry.Kind`: purchase, usage, refund, credit, expiry).
A stored refund is one of three movements, told apart by the row itself, since entries are
immutable and old rows are never rewritten to say which:

- amount < 0: money back to the card, a **purchase refund** (its `refund_of` is the
  purchase: the sign constraint allows a negative refund only so, without a service);
- amount > 0 with a service: a **usage refund** (its `refund_of` is the usage charge);
- amount > 0 without a service: goodwill recorded before the "credit" kind existed
  (migration billing.0006), a **credit**.

Each movement is defined once, as the shapes of stored row it covers (`Shape`); the SQL
condition (`Movement.sql`), the SQL expression naming an entry's movement
(`movement_sql`) and the Python reading of a row (`movement_of`) are all made from those
shapes, and a test holds them against each other on every shape the constraints allow."""

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.db.models import Q

from billing.money import ZERO, format_money


class Direction(StrEnum):
    """Which way money moves for the customer: in (shown as a gain) or out."""

    IN = "in"
    OUT = "out"


class ServiceIs(StrEnum):
    ANY = "any"
    NONE = "none"  # service = ''
    SOME = "some"  # service <> ''


@dataclass(frozen=True)
class Shape:
    """Stored rows of `kind` whose amount has `amount_sign` (0: any sign) and whose
    service is as `service` says."""

    kind: str
    amount_sign: int = 0
    service: ServiceIs = ServiceIs.ANY

    def sql(self, alias: str = "") -> str:
        column = f"{alias}." if alias else ""
        conditions = [f"{column}kind = '{self.kind}'"]
        if self.amount_sign:
            conditions.append(f"{column}amount {'>' if self.amount_sign > 0 else '<'} 0")
        if self.service == ServiceIs.NONE:
            conditions.append(f"{column}service = ''")
        elif self.service == ServiceIs.SOME:
            conditions.append(f"{column}service <> ''")
        return " AND ".join(conditions)

    def q(self) -> Q:
        """The same condition for the ORM."""
        condition = Q(kind=self.kind)
        if self.amount_sign:
            condition &= Q(amount__gt=0) if self.amount_sign > 0 else Q(amount__lt=0)
        if self.service == ServiceIs.NONE:
            condition &= Q(service="")
        elif self.service == ServiceIs.SOME:
            condition &= ~Q(service="")
        return condition

    def matches(self, kind: str, amount: Decimal, service: str) -> bool:
        if kind != self.kind:
            return False
        if self.amount_sign and not (amount > 0 if self.amount_sign > 0 else amount < 0):
            return False
        if self.service == ServiceIs.NONE:
            return service == ""
        if self.service == ServiceIs.SOME:
            return service != ""
        return True


@dataclass(frozen=True)
class Movement:
    """One kind of money movement.

    `name`: what the CSV and the API call it. `label`: what a customer reads. `term`: its
    field in `Bridge`. `total`: its `LicenseBalance` lifetime total (the size, always ≥ 0).
    `event`: the money event (and, for all but usage, the webhook type) its posting writes
    (billing.events.types). `sign`: +1 adds to the balance, −1 takes from it (the stored
    amounts have that sign; a usage entry may be 0). `shapes`: the stored rows it covers."""

    name: str
    label: str
    term: str
    total: str
    total_label: str
    event: str
    sign: int
    shapes: tuple[Shape, ...]

    @property
    def direction(self) -> Direction:
        return Direction.IN if self.sign > 0 else Direction.OUT

    def sql(self, alias: str = "") -> str:
        """The condition, over billing_ledgerentry columns (`alias.`-qualified), that an
        entry is this movement."""
        return " OR ".join(f"({shape.sql(alias)})" for shape in self.shapes)

    def q(self) -> Q:
        """The ORM condition that an entry is this movement."""
        condition = Q(pk__in=[])
        for shape in self.shapes:
            condition |= shape.q()
        return condition

    def covers(self, kind: str, amount: Decimal, service: str) -> bool:
        return any(shape.matches(kind, amount, service) for shape in self.shapes)


# The stored kinds (LedgerEntry.Kind's values), spelled here so that this module sits below
# the models: billing.ledger.models takes its choices' words from the movements.
STORED_PURCHASE = "purchase"
STORED_USAGE = "usage"
STORED_REFUND = "refund"
STORED_CREDIT = "credit"
STORED_EXPIRY = "expiry"

PURCHASE = Movement(
    name="purchase",
    label="Purchase",
    term="purchases",
    total="total_purchased",
    total_label="purchased",
    event="purchase.succeeded",
    sign=1,
    shapes=(Shape(STORED_PURCHASE),),
)
PURCHASE_REFUND = Movement(
    name="purchase_refund",
    label="Refund of card purchase",
    term="purchase_refunds",
    total="total_purchase_refunded",
    total_label="refunded to the card",
    event="purchase.refunded",
    sign=-1,
    shapes=(Shape(STORED_REFUND, amount_sign=-1),),
)
CREDIT = Movement(
    name="credit",
    label="Credit",
    term="credits",
    total="total_credited",
    total_label="credited",
    event="credit.granted",
    sign=1,
    shapes=(
        Shape(STORED_CREDIT),
        # Goodwill recorded before the credit kind: a refund of nothing.
        Shape(STORED_REFUND, amount_sign=1, service=ServiceIs.NONE),
    ),
)
USAGE_REFUND = Movement(
    name="usage_refund",
    label="Refund",
    term="usage_refunds",
    total="total_refunded",
    total_label="refunded",
    event="refund.issued",
    sign=1,
    shapes=(Shape(STORED_REFUND, service=ServiceIs.SOME),),
)
USAGE = Movement(
    name="usage",
    label="Usage",
    term="usage",
    total="total_spent",
    total_label="spent",
    event="usage.recorded",
    sign=-1,
    shapes=(Shape(STORED_USAGE),),
)
EXPIRY = Movement(
    name="expiry",
    label="Expired credit",
    term="expired",
    total="total_expired",
    total_label="expired",
    event="credit.expired",
    sign=-1,
    shapes=(Shape(STORED_EXPIRY),),
)

# In the bridge's order.
MOVEMENTS: tuple[Movement, ...] = (PURCHASE, PURCHASE_REFUND, CREDIT, USAGE_REFUND, USAGE, EXPIRY)
MOVEMENTS_BY_NAME = {m.name: m for m in MOVEMENTS}


def movement_of(kind: str, amount: Decimal, service: str = "") -> Movement:
    """The movement a stored row (its kind, amount and service) is."""
    for movement in MOVEMENTS:
        if movement.covers(kind, amount, service):
            return movement
    raise ValueError(f"no movement is a {kind} of {amount} (service {service!r})")


def movement_sql(alias: str = "") -> str:
    """An SQL expression naming each billing_ledgerentry row's movement (`Movement.name`)."""
    whens = " ".join(f"WHEN {m.sql(alias)} THEN '{m.name}'" for m in MOVEMENTS)
    return f"(CASE {whens} END)"


# Stored refunds without a service are two movements (purchase refunds and old goodwill,
# opposite signs); the daily rollups, keyed by stored kind and service, sum both in one
# row, so what needs them apart reads these few entries (the partial index
# ledger_bare_refunds covers exactly them).
def bare_refunds_sql(alias: str = "") -> str:
    column = f"{alias}." if alias else ""
    return f"{column}kind = '{STORED_REFUND}' AND {column}service = ''"


@dataclass(frozen=True)
class Bridge:
    """A balance explained: opening + purchases − purchase refunds + credits + usage
    refunds − usage − expired = closing, exact to the micro-dollar. Each term is a size
    (≥ 0); its movement's sign says whether it adds or takes away. Lifetime (opening 0)
    or for a period: billing.ledger.bridge."""

    opening: Decimal
    purchases: Decimal
    purchase_refunds: Decimal
    credits: Decimal
    usage_refunds: Decimal
    usage: Decimal
    expired: Decimal
    closing: Decimal

    def terms(self) -> Iterator[tuple[Movement, Decimal]]:
        """Each movement with its term, in the bridge's order."""
        for movement in MOVEMENTS:
            yield movement, getattr(self, movement.term)

    @property
    def computed_closing(self) -> Decimal:
        return self.opening + sum((m.sign * amount for m, amount in self.terms()), ZERO)

    @property
    def holds(self) -> bool:
        return self.computed_closing == self.closing

    def check(self) -> "Bridge":
        """The bridge itself, or BridgeBroken saying by how much it misses."""
        if not self.holds:
            raise BridgeBroken(self)
        return self


class BridgeBroken(ValueError):
    """Figures that do not add up: a bug, never a customer's input."""

    def __init__(self, bridge: Bridge):
        self.bridge = bridge
        terms = " ".join(
            f"{'+' if m.sign > 0 else '−'} {format_money(amount)} {m.term}"
            for m, amount in bridge.terms()
        )
        super().__init__(
            f"the bridge does not hold: {format_money(bridge.opening)} opening {terms} = "
            f"{format_money(bridge.computed_closing)}, not the closing "
            f"{format_money(bridge.closing)}"
        )


BRIDGE_TERMS: tuple[str, ...] = tuple(m.term for m in MOVEMENTS)
