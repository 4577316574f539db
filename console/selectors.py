"""Reads the console composes from the apps below it: the operations overview and the
license page. Each is a fixed number of queries, whatever the size of the ledger."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import F
from django.utils import timezone

from accounts.models import AuditEvent, Domain, License, Membership
from accounts.selectors import audit_events_for_license
from billing.credits.selectors import CreditBalances, credit_balances_get
from billing.ledger.bridge import bridge_lifetime
from billing.ledger.kinds import MOVEMENTS, USAGE, Bridge, movement_sql
from billing.ledger.pages import LedgerPage, ledger_page
from billing.ledger.selectors import balance_get
from billing.limits.figures import CreditFigures
from billing.limits.selectors import spend_limits_get
from billing.models import BalanceAlert, ChargeFlag, LedgerEntry, LicenseBalance
from console.hooks import (
    LoadedPanel,
    OverviewCount,
    license_panels_load,
    overview_counts_registered,
)
from payments.autotopup import auto_topup_month_used
from payments.models import Payment, PaymentAccount
from payments.selectors import account_for, open_disputes
from usage.models import QuarantinedRecord, SyncState
from usage.selectors import sync_lagging_before, sync_state_get, sync_states_lagging

LICENSE_PAGE_ENTRIES = 20
LICENSE_PAGE_PAYMENTS = 5
LICENSE_PAGE_FLAGS = 10


def today_start(now: datetime | None = None) -> datetime:
    local = timezone.localtime(now or timezone.now())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


# The movements the overview counts today: every one but usage (the sync pages' volume).
TODAY_MOVEMENTS = tuple(m for m in MOVEMENTS if m is not USAGE)


def movements_today(start: datetime) -> dict[str, int]:
    """Today's entries (from `start`) of each movement but usage, by its name: one range
    of the (-occurred_at, -id) index, named by the movement (billing.ledger.kinds)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {movement_sql()}, count(*) FROM billing_ledgerentry "  # noqa: S608 (constants)
            "WHERE occurred_at >= %s AND kind <> %s GROUP BY 1",
            [start, LedgerEntry.Kind.USAGE],
        )
        return {name: count for name, count in cursor.fetchall()}


def overview_counts(*, urls: dict[str, str]) -> list[OverviewCount]:
    """The staff home page: what needs attention and what moved today."""
    start = today_start()
    active = License.Status.ACTIVE
    below = LicenseBalance.objects.filter(
        license__status=active, balance__lt=F("license__low_balance_threshold")
    ).count()
    failing = SyncState.objects.failing().count()
    lagging = sync_states_lagging().filter(license__status=active).count()
    quarantined = QuarantinedRecord.objects.filter(received_at__gte=start).count()
    moved = movements_today(start)
    unsent = BalanceAlert.objects.filter(sent_at__isnull=True).count()
    flags = ChargeFlag.objects.filter(status=ChargeFlag.Status.OPEN).count()  # flag_queue index
    return [
        OverviewCount("Licenses below their threshold", below, urls["below"], below > 0),
        OverviewCount("Failing syncs", failing, urls["failing"], failing > 0),
        OverviewCount("Lagging syncs", lagging, urls["lagging"], lagging > 0),
        OverviewCount(
            "Records quarantined today", quarantined, urls["quarantined"], quarantined > 0
        ),
        # Each movement under its own label (a goodwill credit is a credit, not a refund).
        *(
            OverviewCount(f"{m.label} today", moved.get(m.name, 0), urls[m.name], False)
            for m in TODAY_MOVEMENTS
        ),
        OverviewCount("Low-balance emails not yet sent", unsent, urls["alerts"], unsent > 0),
        OverviewCount("Open charge flags", flags, urls["flags"], flags > 0),
        *overview_counts_registered(),  # the apps above the console (api: webhook failures)
    ]


@dataclass(frozen=True)
class AutoTopup:
    """The auto top-up rule and where it stands this month (payments.autotopup)."""

    account: PaymentAccount
    used_count: int
    used_amount: Decimal


@dataclass(frozen=True)
class LicenseConsole:
    """Everything a support person needs on one license, one page."""

    license: License
    balance: LicenseBalance
    bridge: Bridge  # the balance explained over the license's life (its totals)
    credit: CreditBalances  # paid and promotional, what expires next
    sync: SyncState
    sync_lag: timedelta | None
    sync_lagging: bool
    quarantined: int
    alerts: list[BalanceAlert]
    members: list[Membership]
    domains: list[Domain]
    audit: list[AuditEvent]
    ledger: LedgerPage
    payments: list[Payment]
    auto_topup: AutoTopup | None  # None: the license never set up card payments
    open_disputes: int
    flags: list[ChargeFlag]  # open, oldest first (at most LICENSE_PAGE_FLAGS)
    flags_open: int
    limits: CreditFigures  # spend limits, what the gate holds now, what is available
    panels: list[LoadedPanel]  # registered by the apps above the console


def _auto_topup(license: License) -> AutoTopup | None:
    account = account_for(license)
    if account is None:
        return None
    count, amount = auto_topup_month_used(license)
    return AutoTopup(account, count, amount)


def license_console_get(license: License) -> LicenseConsole:
    now = timezone.now()
    sync = sync_state_get(license)
    as_of = sync.known_current_at
    lag = now - as_of if as_of else None
    open_flags = ChargeFlag.objects.for_license(license).filter(status=ChargeFlag.Status.OPEN)
    balance = balance_get(license)
    return LicenseConsole(
        license=license,
        balance=balance,
        bridge=bridge_lifetime(balance),
        credit=credit_balances_get(license),
        sync=sync,
        sync_lag=lag,
        sync_lagging=as_of is None or as_of < sync_lagging_before(now),
        quarantined=sync.records_quarantined,
        alerts=list(BalanceAlert.objects.for_license(license).order_by("-crossed_at")[:5]),
        members=list(
            Membership.objects.for_license(license).select_related("user").order_by("user__email")
        ),
        domains=list(Domain.objects.for_license(license).order_by("-is_primary", "hostname")),
        audit=list(audit_events_for_license(license, limit=10)),
        ledger=ledger_page(license=license, size=LICENSE_PAGE_ENTRIES),
        payments=list(
            Payment.objects.for_license(license).order_by("-created_at", "-id")[
                :LICENSE_PAGE_PAYMENTS
            ]
        ),
        auto_topup=_auto_topup(license),
        open_disputes=open_disputes(license).count(),
        flags=list(open_flags.order_by("created_at", "id")[:LICENSE_PAGE_FLAGS]),
        flags_open=open_flags.count(),
        limits=spend_limits_get(license=license, now=now),
        panels=license_panels_load(license),
    )
