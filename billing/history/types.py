"""The types a customer tells ledger lines apart by: each movement (billing.ledger.kinds)
by its name, its label with what it refers to, and the filter on a type, in the ORM and in
SQL, made from the movements' stored shapes (All transactions, the CSV, the API)."""

from django.db.models import Q

from billing.ledger.kinds import MOVEMENTS, PURCHASE_REFUND, USAGE_REFUND, Movement


def transaction_label(movement: Movement, refund_of_id: int | None) -> str:
    """A line's label as customers read it: the movement's, and for a refund of a card
    purchase, which purchase (its transaction number)."""
    if movement is PURCHASE_REFUND and refund_of_id is not None:
        return f"{movement.label} #{refund_of_id}"
    return movement.label


def term_title(movement: Movement) -> str:
    """The movement as a heading of a sum, from its bridge term: "Purchase refunds",
    "Usage refunds", "Expired" (statements, filters)."""
    return movement.term.replace("_", " ").capitalize()


# The types a list is filtered by: each movement by its name, and "refund" for both kinds of
# refund (the name the API's filter had before refunds were told apart).
LEGACY_REFUND_TYPE = "refund"
TRANSACTION_TYPES: dict[str, tuple[Movement, ...]] = {
    **{m.name: (m,) for m in MOVEMENTS},
    LEGACY_REFUND_TYPE: (PURCHASE_REFUND, USAGE_REFUND),
}


def movement_q(movements: tuple[Movement, ...]) -> Q:
    """The ORM condition that an entry is one of `movements`."""
    condition = Q(pk__in=[])
    for movement in movements:
        condition |= movement.q()
    return condition


# The type filter's choices, as a form offers them.
TRANSACTION_TYPE_CHOICES: list[tuple[str, str]] = [
    *((m.name, term_title(m)) for m in MOVEMENTS),
    (LEGACY_REFUND_TYPE, "Any refund"),
]


def movement_type_sql(kind: str, alias: str = "") -> str:
    """The SQL condition of a type filter (TRANSACTION_TYPES), over billing_ledgerentry."""
    return " OR ".join(f"({m.sql(alias)})" for m in TRANSACTION_TYPES[kind])
