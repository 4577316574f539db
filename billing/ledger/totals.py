"""What a license's balance and lifetime totals are: each one a sum over its ledger entries.

`LicenseBalance` stores one column per `Total`. This list is the only place the totals are
defined: the posting statement's increments, the rebuild, the reconciliation's check, the
admin's columns and the tests' own sums are all derived from it. The money totals are the
movements' (billing.ledger.kinds): one per movement, its size, so the lifetime bridge is
balance = purchased − refunded to the card + credited + refunded − spent − expired."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from billing.ledger.kinds import MOVEMENTS, MOVEMENTS_BY_NAME, USAGE, movement_of
from billing.models import Service


@dataclass(frozen=True)
class Total:
    """`name` (a LicenseBalance column) = sign × sum of `measure` over the entries that are
    one of `movements` (billing.ledger.kinds names; empty: any entry) and of `service` (any
    when empty)."""

    name: str
    label: str
    measure: str  # an entry column: amount, tokens, images, api_calls; "" counts entries
    movements: tuple[str, ...] = ()
    service: str = ""
    sign: int = 1

    @property
    def is_money(self) -> bool:
        return self.measure == "amount"

    def _where(self, alias: str) -> str:
        column = f"{alias}." if alias else ""
        conditions = []
        if self.movements:
            either = " OR ".join(
                f"({MOVEMENTS_BY_NAME[name].sql(alias)})" for name in self.movements
            )
            conditions.append(f"({either})")
        if self.service:
            conditions.append(f"{column}service = '{self.service}'")
        return f" FILTER (WHERE {' AND '.join(conditions)})" if conditions else ""

    def sql(self, alias: str = "", counted: str = "") -> str:
        """The SQL aggregate over billing_ledgerentry rows (optionally `alias.`-qualified).
        `counted`: the rows are groups of entries, each with its count in this column (and
        its sums in the measures' columns), so an entry count sums it."""
        column = f"{alias}." if alias else ""
        if not self.measure:
            if counted:
                return f"coalesce(sum({column}{counted}){self._where(alias)}, 0)"
            return f"count(*){self._where(alias)}"
        minus = "-" if self.sign < 0 else ""
        return f"coalesce({minus}sum({column}{self.measure}){self._where(alias)}, 0)"

    def _matches(self, entry: "EntryLike") -> bool:
        if self.service and entry.service != self.service:
            return False
        if not self.movements:
            return True
        return movement_of(entry.kind, entry.amount, entry.service).name in self.movements

    def of(self, entries: Iterable["EntryLike"]) -> Decimal | int:
        """The same sum in Python, over entries already loaded (tests, small reports)."""
        zero: Decimal | int = Decimal("0") if self.is_money else 0
        total = zero
        for entry in entries:
            if not self._matches(entry):
                continue
            total += getattr(entry, self.measure) if self.measure else 1
        return self.sign * total


class EntryLike(Protocol):
    """An entry or an entry to post (billing.ledger.posting.EntryDraft): read only."""

    @property
    def kind(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def tokens(self) -> int: ...
    @property
    def images(self) -> int: ...
    @property
    def api_calls(self) -> int: ...


_NOT_USAGE = tuple(m.name for m in MOVEMENTS if m is not USAGE)

BALANCE_TOTALS: tuple[Total, ...] = (
    Total("balance", "balance", "amount"),
    # One per movement, its size: "Total Purchased" is gross, with the refunds to the card
    # beside it (docs/product.md).
    *(Total(m.total, m.total_label, "amount", movements=(m.name,), sign=m.sign) for m in MOVEMENTS),
    Total("api_calls", "API calls", "api_calls"),
    Total(
        "input_tokens", "input tokens", "tokens", movements=(USAGE.name,), service=Service.AI_DATA
    ),
    Total(
        "cached_tokens",
        "cached tokens",
        "tokens",
        movements=(USAGE.name,),
        service=Service.AI_DATA_CACHED,
    ),
    Total(
        "completion_tokens",
        "completion tokens",
        "tokens",
        movements=(USAGE.name,),
        service=Service.AI_DATA_COMPLETION,
    ),
    Total("images", "images", "images", movements=(USAGE.name,)),
    # Usage spending on ai_images: the dashboard's image/text breakdown reads it here
    # instead of summing every day's rollup (text spending is total_spent - images_spent).
    Total(
        "images_spent",
        "spent on images",
        "amount",
        movements=(USAGE.name,),
        service=Service.AI_IMAGES,
        sign=-1,
    ),
    Total("entries", "entries", ""),
    # Every movement but usage: with api_calls, the guide's Total Transactions (one per API
    # call, however many service entries it became, plus each money movement).
    Total("money_entries", "purchases, credits, refunds and expiries", "", movements=_NOT_USAGE),
)

TOTAL_NAMES: tuple[str, ...] = tuple(t.name for t in BALANCE_TOTALS)


def sums_select_sql(alias: str = "", counted: str = "") -> str:
    """`<sum> AS <name>, …` for every total, to SELECT over ledger rows (or over groups of
    them, each counting its entries in the column `counted`: Total.sql)."""
    return ",\n        ".join(f"{t.sql(alias, counted)} AS {t.name}" for t in BALANCE_TOTALS)


def totals_of(entries: Iterable[EntryLike]) -> dict[str, Decimal | int]:
    """Every total over entries already loaded, by name."""
    rows = list(entries)
    return {t.name: t.of(rows) for t in BALANCE_TOTALS}
