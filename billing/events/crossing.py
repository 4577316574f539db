"""The one rule of "the balance crossed a line", for whatever reacts to a balance: the
low-balance alerts (a threshold line, then zero) and the auto top-up (its threshold).

A reaction keeps a level: how many of its lines it has already announced (0: armed). The
balance crossing a line deeper than that level is news once; going further below a line
already announced is not; back at or above the first line re-arms every line. Lines are
given from the first (highest) to the last.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Line:
    """A line under the balance: it is below it under `amount` (or at it too, `at=True`:
    "zero or below")."""

    amount: Decimal
    at: bool = False

    def under(self, balance: Decimal) -> bool:
        return balance <= self.amount if self.at else balance < self.amount


@dataclass(frozen=True)
class Crossing:
    level: int  # the level to keep from now on
    crossed: int | None = None  # the line crossed now (1-based), announced once


def lines_below(balance: Decimal, lines: Sequence[Line]) -> int:
    """The deepest line the balance is under (1-based); 0 when it is under none."""
    return max((n for n, line in enumerate(lines, 1) if line.under(balance)), default=0)


def crossing_step(*, level: int, balance: Decimal, lines: Sequence[Line]) -> Crossing:
    """What a new balance means for a reaction at `level`."""
    now = lines_below(balance, lines)
    if now == 0:
        return Crossing(level=0)
    if now > level:
        return Crossing(level=now, crossed=now)
    return Crossing(level=level)
