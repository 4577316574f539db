"""A license's month as its statement states it, between local midnights in the license's
timezone: the month's balance bridge (billing.ledger.bridge.bridge_month: opening +
purchases − purchase refunds + credits + usage refunds − usage − expired = closing, from
the rollups, constant in the history's length). The one statement selector: the customer's
statement page and PDF (billing/statements/selectors.py) and the API's statements read it,
and the billing team's reconciliation (reconciliation_month) recomputes the same figures
from the ledger and reports any statement figure that differs.

`MonthFigures` keeps the statement's older names beside the bridge for the surfaces that
still read them: `refunds` is usage refunds less purchase refunds (refunds of a charge are
+, money back to the card −), as statements showed them before the two were told apart."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from accounts.models import License
from billing.ledger.bridge import bridge_month, bridge_months
from billing.ledger.kinds import BRIDGE_TERMS, Bridge


@dataclass(frozen=True)
class MonthFigures:
    month: date  # the first day
    bridge: Bridge
    entries: int

    @property
    def opening(self) -> Decimal:
        return self.bridge.opening

    @property
    def closing(self) -> Decimal:
        return self.bridge.closing

    @property
    def purchases(self) -> Decimal:
        """Gross: the refunds to the card are `purchase_refunds`."""
        return self.bridge.purchases

    @property
    def purchase_refunds(self) -> Decimal:
        return self.bridge.purchase_refunds

    @property
    def credits(self) -> Decimal:
        """Goodwill and promotional credit (and goodwill recorded as a refund)."""
        return self.bridge.credits

    @property
    def usage_refunds(self) -> Decimal:
        return self.bridge.usage_refunds

    @property
    def usage(self) -> Decimal:
        """Spent in the month, positive."""
        return self.bridge.usage

    @property
    def expired(self) -> Decimal:
        return self.bridge.expired

    @property
    def refunds(self) -> Decimal:
        """Usage refunds (+) and purchase refunds (−) together: the older statement line."""
        return self.bridge.usage_refunds - self.bridge.purchase_refunds

    @property
    def balances(self) -> bool:
        return self.bridge.holds


# The names reconciliation_month holds against its own sums from the ledger: the bridge's
# figures and the count of entries.
FIGURE_NAMES = ("opening", *BRIDGE_TERMS, "closing", "entries")


def month_figures_of(*, license_id: int, timezone: str, month: date) -> MonthFigures:
    """By id and timezone, for the reconciliation's rows (it has no License objects)."""
    figures = bridge_month(license_id=license_id, timezone=timezone, month=month)
    return MonthFigures(month=figures.month, bridge=figures.bridge, entries=figures.entries)


def statement_month(*, license: License, month: date) -> MonthFigures:
    """The license's month as its statement states it."""
    return month_figures_of(license_id=license.pk, timezone=license.timezone, month=month)


def statement_months_figures(*, license: License, first: date, last: date) -> list[MonthFigures]:
    """Each month from `first` to `last`, oldest first, as its statement states it: one
    statement for all of them (the statements list)."""
    return [
        MonthFigures(month=b.month, bridge=b.bridge, entries=b.entries)
        for b in bridge_months(
            license_id=license.pk, timezone=license.timezone, first=first, last=last
        )
    ]
