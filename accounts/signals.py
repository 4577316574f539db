"""Hooks the apps above accounts register, so accounts never imports them."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.dispatch import Signal

# Sent inside the transaction that changed a license's timezone, with `license=`.
# Billing rebuilds the rollups it keeps by local day (billing.apps).
license_timezone_changed = Signal()


@dataclass(frozen=True)
class LicenseSummary:
    """What the license list shows beside a license's name, filled in by billing."""

    balance_label: str  # "$12.345678"
    state: str  # "ok", "low" (below its low-balance threshold) or "new" (no activity yet)


_summaries: list[Callable[[list], dict[int, LicenseSummary]]] = []


def license_summaries_register(summaries: Callable[[list], dict[int, LicenseSummary]]) -> None:
    """`summaries(licenses)` -> {license pk: LicenseSummary}, in a fixed number of queries."""
    if summaries not in _summaries:
        _summaries.append(summaries)


def license_summaries(licenses: Iterable) -> dict[int, LicenseSummary]:
    licenses = list(licenses)
    found: dict[int, LicenseSummary] = {}
    for summaries in _summaries:
        found.update(summaries(licenses))
    return found
