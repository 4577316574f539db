"""The overview's basis: what the whole dashboard is computed from, read in one small query
whatever the history (the license's totals, the prices in effect, its open credit grants,
its last sync and so how fresh its usage data is), and the version that names what the ledger's sections show (the
render cache's key, dashboard/render_cache.py)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, QuerySet
from django.utils import timezone

from accounts.models import License
from billing.credits.selectors import (
    CreditBalances,
    credit_balances_from,
    credit_balances_get,
    grants_open,
)
from billing.models import LicenseBalance
from billing.prices.selectors import prices_by_service, prices_current, prices_in_effect
from dashboard.formatting import format_age
from portal.sql import ANY_MOMENT, CompiledQuery
from usage.selectors import known_current_at_subquery, sync_state_get


@dataclass(frozen=True)
class Freshness:
    """How old the usage data is: the last sync that reached the end of what the upstream
    had, seen from `as_of` (when the page was built)."""

    last_updated: datetime | None
    as_of: datetime | None
    stale_after: timedelta = timedelta(minutes=15)

    @property
    def data_age(self) -> timedelta | None:
        if self.last_updated is None or self.as_of is None:
            return None
        return max(self.as_of - self.last_updated, timedelta(0))

    @property
    def data_age_label(self) -> str:
        """ "40 minutes ago" ("" before the first sync)."""
        age = self.data_age
        return "" if age is None else format_age(age.total_seconds())

    @property
    def is_stale(self) -> bool:
        """The usage service has not been reached for a while: the page shows the last data
        it has, with a notice (the numbers catch up by themselves when it answers again)."""
        age = self.data_age
        return age is not None and age > self.stale_after


@dataclass(frozen=True)
class DashboardBasis:
    """What the whole dashboard is computed from, in one small query whatever the history:
    the license's totals, the prices in effect, its open credit grants and its last sync.

    Everything else the page shows is derived from the ledger those totals sum (the daily
    rollups and the recent entries, kept in the same transaction as the totals), from the
    local day and from the license's own settings, so `sections_version` names exactly what
    the ledger's sections show (the render cache's key, dashboard/render_cache.py).
    """

    license: License
    now: datetime
    today: date  # in the license's timezone
    totals: LicenseBalance
    prices: dict[str, Decimal]
    # The balance split into paid and promotional credit: the open grants, which change
    # only with a posting (a purchase, a charge, an expiry), so with the ledger's version.
    credit: CreditBalances
    freshness: Freshness

    @property
    def timezone(self) -> str:
        return self.license.timezone

    @property
    def has_activity(self) -> bool:
        return self.totals.has_activity

    @property
    def ledger_version(self) -> tuple[int, datetime | None, Decimal]:
        """Changes with every posting: the ledger is append-only, and the statement that
        inserts entries adds their count to `entries` and sets `updated_at` in the same
        transaction (billing.ledger.posting.post_entries; the totals' rebuild sets both too). A
        license with no entries yet has no row: (0, None, 0)."""
        totals = self.totals
        return (totals.entries, totals.updated_at if totals.entries else None, totals.balance)

    def sections_version(self) -> tuple:
        """Everything the ledger's sections (balance, estimates and forecast, recent
        transactions, analytics, the charts, the low-balance warning) depend on: the
        license, its ledger, its local day and timezone (which days the rollups and the
        charts' bars are), its alert threshold and the prices in effect. Not the viewer,
        not the time of day, not the last sync: those parts of the page are drawn on each
        request. A new input of dashboard_from belongs here too."""
        return (
            self.license.pk,
            self.ledger_version,
            self.today,
            self.license.timezone,
            self.license.low_balance_threshold,
            tuple(sorted(self.prices.items())),
        )


def _basis(*, license_id: int, moment: datetime) -> QuerySet[LicenseBalance]:
    """The license's totals row with the prices in effect at `moment`, its last sync and
    its open credit grants."""
    prices = prices_in_effect(moment)
    grants = grants_open(OuterRef("license"))  # ordered: the three arrays line up
    return (
        LicenseBalance.objects.for_license(License(pk=license_id))
        .annotate(
            basis_price_services=ArraySubquery(prices.values("service")),
            basis_price_units=ArraySubquery(prices.values("unit_price")),
            basis_known_current_at=known_current_at_subquery(OuterRef("license")),
            basis_grant_kinds=ArraySubquery(grants.values("kind")),
            basis_grant_remainders=ArraySubquery(grants.values("remaining")),
            basis_grant_expiries=ArraySubquery(grants.values("expires_at")),
        )
        .order_by()
    )


# Built by the ORM once per process, for a license and a moment that stand for any
# (portal/sql.py): building and compiling its subqueries took more Python than
# anything else on a page whose sections were kept, and only the license and the moment
# differ between requests.
_BASIS = CompiledQuery("dashboard basis", _basis, license_id=-1, moment=ANY_MOMENT)


def dashboard_basis(*, license: License, now: datetime | None = None) -> DashboardBasis:
    """The totals, the prices in effect, the open grants and the last sync in one query
    (one snapshot: what is read after it, the rollups and the recent entries, is at least
    as new, so content rendered under a version never shows money older than that
    version)."""
    now = now or timezone.now()
    # Routed like any read of LicenseBalance (the replica on the pages that allow it,
    # portal/db_router.py).
    row: Any = next(iter(_BASIS.rows(license_id=license.pk, moment=now)), None)  # the basis_*
    if row is not None:
        totals = row
        current = prices_by_service(
            zip(row.basis_price_services, row.basis_price_units, strict=True)
        )
        known_current_at = row.basis_known_current_at
        credit = credit_balances_from(
            zip(
                row.basis_grant_kinds,
                row.basis_grant_remainders,
                row.basis_grant_expiries,
                strict=True,
            )
        )
    else:  # no entries yet, so no totals row to read the rest with
        totals = LicenseBalance(license=license)
        current = prices_current(now)
        known_current_at = sync_state_get(license).known_current_at
        credit = credit_balances_get(license)
    return DashboardBasis(
        license=license,
        now=now,
        today=license.local_date(now),
        totals=totals,
        prices=current,
        credit=credit,
        freshness=Freshness(
            last_updated=known_current_at,
            as_of=now,
            stale_after=timedelta(seconds=settings.USAGE_STALE_AFTER_SECONDS),
        ),
    )
