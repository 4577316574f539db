"""Hooks the apps above the console register, so the console never imports them.

The api app (API keys, outgoing webhooks) sits above the console in the stack: a webhook
endpoint is a customer's own setting, made on a customer page. Its failures still belong
on the staff's license page and overview, so api registers them here (api.admin):

- `license_panel_register(template=, load=)`: `load(license)` returns the context of one
  panel of the license page, in a fixed number of queries whatever the license's size; the
  page includes `template` with that context as `panel`.
- `overview_count_register(label=, load=)`: `load()` returns one `OverviewCount` (label, count and
  the admin list it links to), shown on the operations overview after the console's own.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accounts.models import License


@dataclass(frozen=True)
class OverviewCount:
    label: str
    count: int
    url: str
    bad: bool  # a non-zero count needs someone's attention


@dataclass(frozen=True)
class LicensePanel:
    template: str
    load: Callable[[License], Any]


@dataclass(frozen=True)
class LoadedPanel:
    template: str
    panel: Any


# Keyed by template / label, so registering twice (a module imported again) adds nothing.
_license_panels: dict[str, LicensePanel] = {}
_overview_counts: dict[str, Callable[[], OverviewCount]] = {}


def license_panel_register(*, template: str, load: Callable[[License], Any]) -> None:
    _license_panels[template] = LicensePanel(template=template, load=load)


def overview_count_register(*, label: str, load: Callable[[], OverviewCount]) -> None:
    _overview_counts[label] = load


def license_panels_load(license: License) -> list[LoadedPanel]:
    return [LoadedPanel(p.template, p.load(license)) for p in _license_panels.values()]


def overview_counts_registered() -> list[OverviewCount]:
    return [load() for load in _overview_counts.values()]
