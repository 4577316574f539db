"""What a license's balance and lifetime totals are: each one a sum over its ledger entries.

`LicenseBalance` stores one column per `Total`. This list is the only place the totals are
defined: the posting statement's increments, the rebuild, the reconciliation's check, the
admin's columns and the tests' own sums are all derived from it."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from billing.models import LedgerEntry, Service

Kind = LedgerEntry.Kind


@dataclass(frozen=True)
class Total:
    """`name` (a LicenseBalance column) = sign × sum of `measure` over the entries of
    `kind` (any kind when empty) and `service` (any service when empty), or of `also_kind`
    with the amount's sign `also_sign` (a second group of entries, for one total only: the
    refunds of card purchases, which are negative and count against what was purchased).
    `amount_sign` keeps only the entries of `kind` whose amount has that sign (0: any);
    `not_kind` leaves out the entries of that kind."""

    name: str
    label: str
    measure: str  # an entry column: amount, tokens, images, api_calls; "" counts entries
    kind: str = ""
    service: str = ""
    sign: int = 1
    amount_sign: int = 0
    also_kind: str = ""
    also_sign: int = 0
    not_kind: str = ""

    @property
    def is_money(self) -> bool:
        return self.measure == "amount"

    def _conditions(
        self, column: str, kind: str, service: str, amount_sign: int, not_kind: str = ""
    ) -> list[str]:
        conditions = []
        if not_kind:
            conditions.append(f"{column}kind <> '{not_kind}'")
        if kind:
            conditions.append(f"{column}kind = '{kind}'")
        if service:
            conditions.append(f"{column}service = '{service}'")
        if amount_sign:
            conditions.append(f"{column}amount {'>' if amount_sign > 0 else '<'} 0")
        return conditions

    def sql(self, alias: str = "") -> str:
        """The SQL aggregate over billing_ledgerentry rows (optionally `alias.`-qualified)."""
        column = f"{alias}." if alias else ""
        conditions = self._conditions(
            column, self.kind, self.service, self.amount_sign, self.not_kind
        )
        if not self.measure:
            where = f" FILTER (WHERE {' AND '.join(conditions)})" if conditions else ""
            return f"count(*){where}"
        if self.also_kind:
            also = self._conditions(column, self.also_kind, "", self.also_sign)
            conditions = [f"(({' AND '.join(conditions)}) OR ({' AND '.join(also)}))"]
        where = f" FILTER (WHERE {' AND '.join(conditions)})" if conditions else ""
        minus = "-" if self.sign < 0 else ""
        return f"coalesce({minus}sum({column}{self.measure}){where}, 0)"

    def _matches(self, entry: "EntryLike") -> bool:
        def signed(sign: int) -> bool:
            return not sign or (entry.amount > 0 if sign > 0 else entry.amount < 0)

        main = (
            (not self.not_kind or entry.kind != self.not_kind)
            and (not self.kind or entry.kind == self.kind)
            and (not self.service or entry.service == self.service)
            and signed(self.amount_sign)
        )
        also = bool(self.also_kind) and entry.kind == self.also_kind and signed(self.also_sign)
        return main or also

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


BALANCE_TOTALS: tuple[Total, ...] = (
    Total("balance", "balance", "amount"),
    # Net of card refunds (refunds of a purchase are negative), so that balance is always
    # purchased - spent + refunded, and "refunded" stays the credits returned on charges.
    Total(
        "total_purchased",
        "purchased",
        "amount",
        kind=Kind.PURCHASE,
        also_kind=Kind.REFUND,
        also_sign=-1,
    ),
    Total("total_spent", "spent", "amount", kind=Kind.USAGE, sign=-1),
    Total("total_refunded", "refunded", "amount", kind=Kind.REFUND, amount_sign=1),
    Total("total_credited", "credited", "amount", kind=Kind.CREDIT),
    Total("api_calls", "API calls", "api_calls"),
    Total("input_tokens", "input tokens", "tokens", kind=Kind.USAGE, service=Service.AI_DATA),
    Total(
        "cached_tokens", "cached tokens", "tokens", kind=Kind.USAGE, service=Service.AI_DATA_CACHED
    ),
    Total(
        "completion_tokens",
        "completion tokens",
        "tokens",
        kind=Kind.USAGE,
        service=Service.AI_DATA_COMPLETION,
    ),
    Total("images", "images", "images", kind=Kind.USAGE),
    # Usage spending on ai_images: the dashboard's image/text breakdown reads it here
    # instead of summing every day's rollup (text spending is total_spent - images_spent).
    Total(
        "images_spent",
        "spent on images",
        "amount",
        kind=Kind.USAGE,
        service=Service.AI_IMAGES,
        sign=-1,
    ),
    Total("entries", "entries", ""),
    # Purchases, credits and refunds: with api_calls, the guide's Total Transactions (one
    # per API call, however many service entries it became, plus each money movement).
    Total("money_entries", "purchases, credits and refunds", "", not_kind=Kind.USAGE),
)

TOTAL_NAMES: tuple[str, ...] = tuple(t.name for t in BALANCE_TOTALS)


def sums_select_sql(alias: str = "") -> str:
    """`<sum> AS <name>, …` for every total, to SELECT over ledger rows."""
    return ",\n        ".join(f"{t.sql(alias)} AS {t.name}" for t in BALANCE_TOTALS)


def totals_of(entries: Iterable[EntryLike]) -> dict[str, Decimal | int]:
    """Every total over entries already loaded, by name."""
    rows = list(entries)
    return {t.name: t.of(rows) for t in BALANCE_TOTALS}
