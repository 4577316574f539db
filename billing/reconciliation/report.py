"""The billing team's monthly reconciliation: per license, the month in its own timezone
(the balance bridge: opening + purchases − purchase refunds + credits + usage refunds −
usage − expired = closing), its credit by kind (paid sold, promotional granted, consumed,
expired and outstanding: billing.credits.selectors.GrantMonth), and every stored figure
that differs from the ledger entries it stands for: the balance totals, the rollups, the
statement's figures, and the credit grants (their remainders add up to the balance, each
purchase and credit has its grant, each expiry is its grant's one entry, their rollups
add up to them). A batch job over the ledger, not a page to poll."""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connections
from django.utils import timezone

from accounts.models import License
from billing.credits.selectors import GRANT_MONTH_FIGURES, GrantMonth, grant_months_of
from billing.ledger.kinds import (
    MOVEMENTS,
    Bridge,
)
from billing.ledger.totals import TOTAL_NAMES
from billing.models import GRANT_SUMS, LedgerEntry
from billing.money import ZERO, quantize_money
from billing.reconciliation.checks import (
    ENDPOINT_ROLLUPS_NOT_READY,
    GRANT_KINDS,
    RECONCILE_ENDPOINT_ROLLUPS_SQL,
    RECONCILE_GRANTS_SQL,
    RECONCILE_REFUNDS_SQL,
    RECONCILE_ROLLUPS_SQL,
    RECONCILE_TOTALS_SQL,
    ROLLUP_MEASURES,
    Difference,
)
from billing.statements.figures import FIGURE_NAMES, month_figures_of
from portal.db_router import read_alias
from portal.months import next_month


@dataclass
class ReconciliationRow:
    license_id: int
    key: str
    name: str
    timezone: str
    # The month's bridge from the ledger (billing.ledger.kinds), each term a size.
    opening: Decimal = ZERO
    purchases: Decimal = ZERO  # gross
    purchase_refunds: Decimal = ZERO  # money back to the card
    # Goodwill and promotional credit: kind "credit", and the goodwill recorded before that
    # kind existed (refunds of no charge; the ledger is append-only, so they stay refunds).
    credits: Decimal = ZERO
    usage_refunds: Decimal = ZERO  # refunds of a usage charge
    usage: Decimal = ZERO  # what was spent in the month, as a positive amount
    expired: Decimal = ZERO  # credit that expired unused
    closing: Decimal = ZERO
    month_entries: int = 0
    entries_to_month_end: int = 0
    ledger_balance: Decimal = ZERO  # sum of every entry, today
    stored_balance: Decimal | None = None  # LicenseBalance.balance (None: no row)
    grants: GrantMonth | None = None  # the month's credit by kind (None: no grants)
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def refunds(self) -> Decimal:
        """Usage refunds (+) and purchase refunds (−) together: the report's older column."""
        return self.usage_refunds - self.purchase_refunds

    @property
    def bridge(self) -> Bridge:
        return Bridge(
            opening=self.opening,
            closing=self.closing,
            **{m.term: getattr(self, m.term) for m in MOVEMENTS},
        )

    def grant_figure(self, name: str) -> Decimal:
        """One of the month's credit figures (GRANT_MONTH_FIGURES), zero without grants."""
        return getattr(self.grants, name) if self.grants is not None else ZERO

    def figure(self, name: str) -> Decimal:
        """A figure of the month by name: the bridge's (and `refunds`) or the credit's."""
        if name in GRANT_MONTH_FIGURES:
            return self.grant_figure(name)
        value: Decimal = getattr(self, name)
        return value


@dataclass
class ReconciliationReport:
    month: date  # the first day of the month
    rows: list[ReconciliationRow]
    generated_at: datetime

    @property
    def differing(self) -> list[ReconciliationRow]:
        return [row for row in self.rows if not row.ok]

    @property
    def ok(self) -> bool:
        return not self.differing


# The earliest month there is anything to reconcile, a statement to show or a month to
# close. Far older "months" (year 1) are not even moments in every timezone: they failed
# with a 500 instead of a message. The future is refused where it matters
# (billing.closing.services.month_refuse_future).
MONTH_EARLIEST = date(2000, 1, 1)


def month_parse(text: str) -> date:
    """'2025-06' → date(2025, 6, 1), or ValueError with a message for people."""
    try:
        parsed = datetime.strptime((text or "").strip(), "%Y-%m")  # noqa: DTZ007 - a month, no time
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a month; write it as YYYY-MM, e.g. 2025-06.") from exc
    if parsed.date() < MONTH_EARLIEST:
        raise ValueError(
            f"{text.strip()} is before {MONTH_EARLIEST:%B %Y}: the ledger holds nothing that old."
        )
    return parsed.date()


def grant_differences(
    rec: tuple, row: "ReconciliationRow", credit_entries: int, expiry_entries: int, ledger: dict
) -> list[Difference]:
    """What the grants' row of RECONCILE_GRANTS_SQL says differs from the ledger."""
    (
        _,
        remaining,
        from_credits,
        wrong,
        expiries,
        wrong_expiries,
        refund_grants,
        month_paid,
        month_promotional,
        month_expired,
    ) = rec[:10]
    found: list[Difference] = []
    balance = ledger.get("balance", ZERO)
    if remaining != max(balance, ZERO):
        found.append(
            Difference(
                "grants' remainders (the balance when positive)", remaining, max(balance, ZERO)
            )
        )
    if from_credits != credit_entries:
        found.append(Difference("grants of purchases and credits", from_credits, credit_entries))
    if wrong:
        found.append(Difference("grants unlike the entry they stand for", wrong, 0))
    if expiries != expiry_entries or wrong_expiries:
        found.append(Difference("expiries (one entry per expired grant)", expiries, expiry_entries))
    pairs = rec[10:]
    expired = ZERO
    for i, (kind, name) in enumerate((k, n) for k in GRANT_KINDS for n in GRANT_SUMS):
        grants_sum, rollups_sum = pairs[2 * i], pairs[2 * i + 1]
        if name == "expired":
            expired += grants_sum
        if grants_sum != rollups_sum:
            found.append(Difference(f"grant rollups {kind} {name}", rollups_sum, grants_sum))
    if expired != ledger.get("total_expired", ZERO):
        found.append(Difference("grants expired", expired, ledger.get("total_expired", ZERO)))
    month = (
        ("paid granted in the month", month_paid, row.purchases),
        ("promotional granted in the month", month_promotional, row.credits + refund_grants),
        ("expired in the month", month_expired, row.expired),
    )
    for what, stored, ours in month:
        if stored != ours:
            found.append(Difference(f"grant rollups: {what}", stored, ours))
    return found


def reconciliation_month(*, month: date, license: License | None = None) -> ReconciliationReport:
    """Per license, for one month in its own timezone: opening balance, purchases, usage,
    refunds, closing balance, and every stored figure (LicenseBalance totals, the month's
    DailyRollup and EndpointDailyRollup rows) that differs from the sum of the ledger entries it stands for.

    A license appears when it has entries up to the month's end, or anything differs.
    """
    month = month.replace(day=1)
    params = {
        "start": month.isoformat(),
        "end": next_month(month).isoformat(),
        "license_id": license.pk if license is not None else None,
    }
    rows: dict[int, ReconciliationRow] = {}
    # Per license, from the ledger: (entries that bring credit in, expiry entries), and
    # the lifetime totals, for the grants' check.
    counts: dict[int, tuple[int, int]] = {}
    lifetime: dict[int, dict[str, Decimal | int]] = {}
    # A customer's statement reads from the replica when its view allows (portal.db_router).
    with connections[read_alias(LedgerEntry)].cursor() as cursor:
        cursor.execute(RECONCILE_TOTALS_SQL, params)
        n_terms = len(MOVEMENTS)
        n = len(TOTAL_NAMES)
        for rec in cursor.fetchall():
            license_id, key, name, tz, opening = rec[:5]
            terms = rec[5 : 5 + n_terms]
            closing, month_entries, to_end, credit_entries, expiry_entries = rec[
                5 + n_terms : 10 + n_terms
            ]
            at = 10 + n_terms
            ledger = dict(zip(TOTAL_NAMES, rec[at : at + n], strict=True))
            has_row = rec[at + n]
            stored = dict(zip(TOTAL_NAMES, rec[at + n + 1 : at + 2 * n + 1], strict=True))
            endpoint_rollups_ready = rec[at + 2 * n + 1]
            row = ReconciliationRow(
                license_id=license_id,
                key=key,
                name=name,
                timezone=tz,
                opening=quantize_money(opening or 0),
                closing=quantize_money(closing or 0),
                month_entries=month_entries or 0,
                entries_to_month_end=to_end or 0,
                ledger_balance=quantize_money(ledger["balance"] or 0),
                stored_balance=stored["balance"] if has_row else None,
            )
            for movement, value in zip(MOVEMENTS, terms, strict=True):
                setattr(row, movement.term, quantize_money(value or 0))
            counts[license_id] = (credit_entries or 0, expiry_entries or 0)
            lifetime[license_id] = {k: v or 0 for k, v in ledger.items()}
            for name_, ledger_value in ledger.items():
                ledger_value = ledger_value or 0
                # No balance row is the same as an all-zero one (nothing was ever posted).
                stored_value = stored[name_] if has_row else 0
                if stored_value != ledger_value:
                    row.differences.append(Difference(name_, stored[name_], ledger_value))
            if not endpoint_rollups_ready:
                row.differences.append(Difference(ENDPOINT_ROLLUPS_NOT_READY, None, None))
            rows[license_id] = row

        for sql, label in (
            (RECONCILE_ROLLUPS_SQL, _rollup_label),
            (RECONCILE_ENDPOINT_ROLLUPS_SQL, _endpoint_rollup_label),
        ):
            cursor.execute(sql, params)
            for rec in cursor.fetchall():
                license_id, day, key, service = rec[:4]
                pairs = rec[4:]
                for i, measure in enumerate(ROLLUP_MEASURES):
                    stored_value, ledger_value = pairs[2 * i], pairs[2 * i + 1]
                    if (stored_value or 0) != (ledger_value or 0):
                        rows[license_id].differences.append(
                            Difference(
                                f"{label(day, key, service)} {measure}", stored_value, ledger_value
                            )
                        )

        cursor.execute(RECONCILE_REFUNDS_SQL, params)
        for (
            license_id,
            charge_id,
            charge_kind,
            charge_license,
            charged,
            refunded,
        ) in cursor.fetchall():
            refundable = (LedgerEntry.Kind.USAGE, LedgerEntry.Kind.PURCHASE)
            if charge_kind not in refundable or charge_license != license_id:
                what = f"refund of entry #{charge_id}: not a charge or purchase of this license"
            else:
                what = f"refunds of entry #{charge_id} exceed the charge"
            rows[license_id].differences.append(Difference(what, refunded, charged))

        cursor.execute(RECONCILE_GRANTS_SQL, params)
        with_grants = set()
        for rec in cursor.fetchall():
            license_id = rec[0]
            with_grants.add(license_id)
            credit_entries, expiry_entries = counts.get(license_id, (0, 0))
            rows[license_id].differences.extend(
                grant_differences(
                    rec,
                    rows[license_id],
                    credit_entries,
                    expiry_entries,
                    lifetime.get(license_id, {}),
                )
            )
        # Entries that bring credit in, on a license with no grant at all.
        for license_id, (credit_entries, _) in counts.items():
            if credit_entries and license_id not in with_grants:
                rows[license_id].differences.append(
                    Difference("grants of purchases and credits", 0, credit_entries)
                )

    grant_months = grant_months_of(month=month, license_id=license.pk if license else None)
    for license_id, grants in grant_months.items():
        if license_id in rows:
            rows[license_id].grants = grants
    kept = [row for row in rows.values() if row.entries_to_month_end or row.differences]
    # The customer's statement (billing.statements.figures, from rollups and the balance) must
    # state exactly these figures: any that differs is a difference like a stored total.
    for row in kept:
        stated = month_figures_of(license_id=row.license_id, timezone=row.timezone, month=month)
        for name in FIGURE_NAMES:
            ours = row.month_entries if name == "entries" else getattr(row, name)
            if getattr(stated, name) != ours:
                row.differences.append(Difference(f"statement {name}", getattr(stated, name), ours))
    return ReconciliationReport(month=month, rows=kept, generated_at=timezone.now())


def _rollup_label(day: date, kind: str, service: str) -> str:
    return f"rollup {day.isoformat()} {kind}{' ' + service if service else ''}"


def _endpoint_rollup_label(day: date, endpoint: str, service: str) -> str:
    return f"endpoint rollup {day.isoformat()} {endpoint or '(none)'} {service}"


def license_month_get(*, license: License, month: date) -> ReconciliationRow:
    """One license's month as the reconciliation reports it (from the ledger), with its
    differences; the statement's own figures are billing.statements.figures, checked here."""
    report = reconciliation_month(month=month, license=license)
    for row in report.rows:
        if row.license_id == license.pk:
            return row
    return ReconciliationRow(
        license_id=license.pk, key=license.key, name=license.name, timezone=license.timezone
    )
