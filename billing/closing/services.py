"""Month close: the billing team closes a month once it reconciles clean, and from then on
no posting may be dated inside it (invariant 11).

The rule itself lives in the posting engine (billing.ledger.posting.post_entries reads
`ClosedMonth` in the same statement that inserts), so every way money enters the ledger —
sync, purchase, refund, payment, correction — obeys it and whatever is computed from the
entries of a closed month (reconciliation, statements) cannot change. This module decides
when a month may be closed or reopened.

Closing month M closes every moment before the end of M (in each license's timezone):
closing is a watermark, and only the latest closed month can be reopened."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from billing.credits.selectors import GRANT_MONTH_FIGURES
from billing.models import ClosedMonth
from billing.money import ZERO
from billing.reconciliation.report import ReconciliationReport, reconciliation_month
from portal.exceptions import ApplicationError
from portal.months import month_of, next_month

# The figures kept per license at the close, and summed into the totals row: the bridge's
# (with "refunds", its two refunds together, as kept before they were told apart), then the
# month's credit by kind (billing.credits.selectors.GrantMonth). A month closed before a
# figure existed kept none of it; comparing with today looks at what it kept.
CLOSED_FIGURES = (
    "opening",
    "purchases",
    "credits",
    "usage",
    "refunds",
    "closing",
    "purchase_refunds",
    "usage_refunds",
    "expired",
    *GRANT_MONTH_FIGURES,
)


def _future_refusal(month: date, today: date | None = None) -> str | None:
    if month_of(month) > month_of(today or timezone.localdate()):
        return f"{month:%B %Y} is in the future: it has no figures yet."
    return None


def month_refuse_future(month: date, *, today: date | None = None) -> None:
    """A month that has not begun has no figures: say so instead of showing zeros."""
    refusal = _future_refusal(month, today)
    if refusal is not None:
        raise ApplicationError(refusal, field="month")


_MONTH_ENDED_SQL = """
SELECT coalesce(bool_and(%(now)s >= (%(end)s::timestamp AT TIME ZONE l.timezone)), true)
       AND %(now)s >= (%(end)s::timestamp AT TIME ZONE 'Etc/GMT+12')
FROM accounts_license AS l
"""


def month_has_ended(month: date, *, now: datetime | None = None) -> bool:
    """True once the month is over in every license's timezone (and the last one on Earth)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _MONTH_ENDED_SQL, {"now": now or timezone.now(), "end": next_month(month).isoformat()}
        )
        return bool(cursor.fetchone()[0])


def closed_month_latest() -> ClosedMonth | None:
    return ClosedMonth.objects.filter(reopened_at__isnull=True).order_by("-month").first()


def closed_month_get(month: date) -> ClosedMonth | None:
    return (
        ClosedMonth.objects.filter(month=month.replace(day=1), reopened_at__isnull=True)
        .select_related("closed_by")
        .first()
    )


def month_is_closed(month: date) -> bool:
    """Closed itself, or before the latest closed month (closing is a watermark)."""
    latest = closed_month_latest()
    return latest is not None and month.replace(day=1) <= latest.month


@dataclass(frozen=True)
class MonthTotals:
    """The reconciliation's totals row: every license's figures summed (CLOSED_FIGURES,
    by name in `sums`, and as attributes)."""

    licenses: int
    month_entries: int
    sums: dict[str, Decimal] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Decimal:
        sums = self.__dict__.get("sums", {})
        if name in sums:
            value: Decimal = sums[name]
            return value
        raise AttributeError(name)


def report_totals(report: ReconciliationReport) -> MonthTotals:
    sums = {name: sum((r.figure(name) for r in report.rows), ZERO) for name in CLOSED_FIGURES}
    return MonthTotals(
        licenses=len(report.rows),
        month_entries=sum(r.month_entries for r in report.rows),
        sums=sums,
    )


def report_figures(report: ReconciliationReport) -> dict:
    """The report as kept in ClosedMonth.figures (exact decimal strings)."""
    totals = report_totals(report)
    return {
        "licenses": {
            str(r.license_id): {
                "key": r.key,
                **{name: f"{r.figure(name):f}" for name in CLOSED_FIGURES},
                "month_entries": r.month_entries,
            }
            for r in report.rows
        },
        "totals": {
            **{name: f"{totals.sums[name]:f}" for name in CLOSED_FIGURES},
            "month_entries": totals.month_entries,
            "licenses": totals.licenses,
        },
    }


def figures_digest(figures: dict) -> str:
    """A fingerprint of a month's figures (report_figures): the confirmation page carries
    the one it showed, and the close refuses if the month's figures differ by then."""
    return hashlib.sha256(json.dumps(figures, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ClosePreview:
    """What closing a month freezes, for billing to confirm: its figures (as the close will
    keep them) and the earlier months still open that it closes with it (a watermark)."""

    month: date
    totals: MonthTotals
    digest: str
    also_closes: list[date]  # the open months between the latest closed month and this one
    first_close: bool  # no month was ever closed: every month before it closes too


def month_close_preview(month: date, *, report: ReconciliationReport) -> ClosePreview:
    month = month_of(month)
    latest = closed_month_latest()
    also: list[date] = []
    if latest is not None:
        cursor = next_month(latest.month)
        while cursor < month:
            also.append(cursor)
            cursor = next_month(cursor)
    return ClosePreview(
        month=month,
        totals=report_totals(report),
        digest=figures_digest(report_figures(report)),
        also_closes=also,
        first_close=latest is None,
    )


def closed_figures_changed(closed: ClosedMonth, report: ReconciliationReport) -> list[str]:
    """What differs between the figures kept at the close and the month recomputed now
    (empty: nothing moved, as invariant 11 demands)."""
    now = report_figures(report)["licenses"]
    kept = closed.figures.get("licenses", {})
    changed = []
    for license_id in sorted(set(now) | set(kept), key=int):
        before, after = kept.get(license_id), now.get(license_id)
        if before is not None and after is not None:
            # Only what the close kept: a figure added since was never part of it.
            after = {name: value for name, value in after.items() if name in before}
        if before != after:
            key = (before or after or {}).get("key", license_id)
            changed.append(f"{key}: at close {before}, now {after}")
    return changed


def month_close_refusal(month: date, *, report: ReconciliationReport | None = None) -> str | None:
    """Why `month` cannot be closed now, or None if it can: it has begun and ended in every
    license's timezone, it is after the latest closed month, and (given its `report`) every
    license reconciles. The one statement of the rule: the close refuses with it, and the
    reconciliation page offers the close only when it says None."""
    month = month_of(month)
    refusal = _future_refusal(month)
    if refusal is not None:
        return refusal
    if not month_has_ended(month):
        return (
            f"{month:%B %Y} has not ended everywhere yet; close it once it is over in every "
            "license's timezone."
        )
    latest = closed_month_latest()
    if latest is not None and latest.month >= month:
        what = "is already closed" if latest.month == month else f"is before {latest}, closed"
        return f"{month:%B %Y} {what}."
    if report is not None and not report.ok:
        keys = ", ".join(row.key for row in report.differing[:5])
        return (
            f"{month:%B %Y} does not reconcile: {len(report.differing)} license(s) differ "
            f"({keys}). Fix the differences, then close it."
        )
    return None


@transaction.atomic
def month_close(*, acting_user: User, month: date, figures_shown: str | None = None) -> ClosedMonth:
    """Close a month after it reconciles clean. Audited. `figures_shown`: the digest of the
    figures billing confirmed (month_close_preview); if the month's figures are no longer
    those, nothing is closed and billing is asked to look again.

    Holds every license's balance row still (`LOCK TABLE … IN EXCLUSIVE MODE`: reads go
    on, postings wait) from before the reconciliation until the close commits, so no
    entry can slip into the month between the check and the close; a posting waiting on
    the lock then sees the closed month and is dated in the open one.
    """
    month = month_of(month)
    refusal = month_close_refusal(month)
    if refusal is None:
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE billing_licensebalance IN EXCLUSIVE MODE")
        report = reconciliation_month(month=month)
        # Again under the lock: another close may have committed meanwhile.
        refusal = month_close_refusal(month, report=report)
    if refusal is not None:
        raise ApplicationError(refusal, field="month")
    figures = report_figures(report)
    if figures_shown is not None and figures_digest(figures) != figures_shown:
        raise ApplicationError(
            f"{month:%B %Y}'s figures changed since they were shown (an entry dated in it "
            "arrived): look at them again before closing it.",
            field="month",
        )
    closed = ClosedMonth.objects.create(month=month, closed_by=acting_user, figures=figures)
    audit_record(
        actor=acting_user,
        license=None,
        action="month.close",
        target=f"{month:%Y-%m}",
        changes=closed.figures["totals"],
    )
    return closed


@transaction.atomic
def month_reopen(*, acting_user: User, month: date, reason: str) -> ClosedMonth:
    """Reopen the latest closed month: a superuser's decision, with a reason. Audited."""
    if not acting_user.is_superuser:
        raise ApplicationError("Only a superuser can reopen a closed month.")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the month is reopened.", field="reason")
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE billing_licensebalance IN EXCLUSIVE MODE")
    closed = closed_month_get(month)
    if closed is None:
        raise ApplicationError(f"{month:%B %Y} is not closed.", field="month")
    latest = closed_month_latest()
    if latest is not None and latest.month != closed.month:
        raise ApplicationError(
            f"Reopen {latest} first: months are reopened newest first.", field="month"
        )
    closed.reopened_at = timezone.now()
    closed.reopened_by = acting_user
    closed.reopen_reason = reason
    closed.save(update_fields=["reopened_at", "reopened_by", "reopen_reason"])
    audit_record(
        actor=acting_user,
        license=None,
        action="month.reopen",
        target=f"{month:%Y-%m}",
        changes={"closed_at": closed.closed_at.isoformat(), "closed_by": closed.closed_by_id},
        reason=reason,
    )
    return closed
