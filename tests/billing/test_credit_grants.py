"""One money model (issue 26): the six movements and the balance bridge, defined once
(billing.ledger.kinds), and credit grants (billing.credits): paid and promotional, consumed
promotional first and soonest expiry first, expiring exactly once (invariants 1, 2, 13)."""

import csv
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from itertools import count
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from accounts.models import License, User
from billing.credits.expiry import credits_expire
from billing.credits.selectors import (
    credit_balances_get,
    grant_month_get,
    grants_expired_in,
    grants_granted_in,
)
from billing.credits.services import credit_grant_issue
from billing.ledger.bridge import bridge_lifetime, bridge_month
from billing.ledger.kinds import MOVEMENTS, Bridge, BridgeBroken, movement_of, movement_sql
from billing.ledger.selectors import balance_get
from billing.models import CreditGrant, LedgerEntry
from billing.purchases.refunds import purchase_refund_record
from billing.reconciliation.export import RECONCILIATION_HEADER
from billing.reconciliation.report import reconciliation_month
from billing.statements.figures import statement_month
from tests.accounts.factories import LicenseFactory
from tests.ledger import (
    assert_grants_consistent,
    assert_ledger_consistent,
    buy,
    refund,
    spend,
)

pytestmark = pytest.mark.django_db

_keys = count(1)
D = Decimal


def grant(
    license: License,
    amount: str,
    by: User,
    *,
    kind: str = "promotional",
    expires_at: datetime | None = None,
    reason: str = "welcome",
) -> LedgerEntry:
    issued = credit_grant_issue(
        acting_user=by,
        license=license,
        amount=D(amount),
        kind=kind,
        reason=reason,
        idempotency_key=f"grant-{next(_keys)}",
        expires_at=expires_at,
    )
    assert issued.entry is not None
    return issued.entry


def grant_of(entry: LedgerEntry) -> CreditGrant:
    return CreditGrant.objects.get(entry=entry)


def remaining(entry: LedgerEntry) -> Decimal:
    return grant_of(entry).remaining


def reconciles(license: License, *months: date) -> None:
    for month in months:
        (row,) = [
            r for r in reconciliation_month(month=month, license=license).rows
            if r.license_id == license.pk
        ]  # fmt: skip
        assert row.ok, row.differences
        assert row.bridge.holds
        assert (
            row.bridge
            == bridge_month(license_id=license.pk, timezone=license.timezone, month=month).bridge
        )


# --- one definition ----------------------------------------------------------------------

# Every stored shape the ledger's constraints allow: (kind, amount, service).
STORED_SHAPES = [
    ("purchase", D("10"), ""),
    ("credit", D("5"), ""),
    ("usage", D("-0.5"), "ai_data"),
    ("usage", D("0"), "ai_data"),
    ("refund", D("0.5"), "ai_images"),  # of a usage charge
    ("refund", D("-4"), ""),  # of a purchase, to the card
    ("refund", D("3"), ""),  # goodwill recorded before the credit kind
    ("expiry", D("-2"), ""),
]
EXPECTED = ["purchase", "credit", "usage", "usage", "usage_refund", "purchase_refund",
            "credit", "expiry"]  # fmt: skip


def test_each_stored_shape_is_one_movement_in_python_and_in_sql() -> None:
    values = ", ".join("(%s, %s::numeric, %s)" for _ in STORED_SHAPES)
    params = [x for shape in STORED_SHAPES for x in shape]
    conditions = ", ".join(f"({m.sql()})" for m in MOVEMENTS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {movement_sql()}, ARRAY[{conditions}] "  # noqa: S608 - constants only
            f"FROM (VALUES {values}) AS t (kind, amount, service)",
            params,
        )
        rows = cursor.fetchall()
    for (kind, amount, service), expected, (in_sql, matches) in zip(
        STORED_SHAPES, EXPECTED, rows, strict=True
    ):
        assert movement_of(kind, amount, service).name == expected == in_sql
        # Exactly one movement's condition holds, the same one.
        assert [m.name for m, hit in zip(MOVEMENTS, matches, strict=True) if hit] == [expected]


def test_the_bridge_says_when_it_does_not_hold() -> None:
    bridge = Bridge(
        opening=D("1"), purchases=D("10"), purchase_refunds=D("4"), credits=D("5"),
        usage_refunds=D("1"), usage=D("3"), expired=D("2"), closing=D("8"),
    )  # fmt: skip
    assert bridge.holds and bridge.check() is bridge
    assert [m.name for m, _ in bridge.terms()] == [m.name for m in MOVEMENTS]
    broken = Bridge(**{**bridge.__dict__, "closing": D("8.000001")})
    with pytest.raises(BridgeBroken, match="not the closing"):
        broken.check()


# --- the bridge on a license with every movement -----------------------------------------


@pytest.fixture
def every_kind(billing_user: User) -> License:
    """May: a purchase. June: goodwill, a card purchase, usage, a usage refund, a card
    refund, a promotional grant that expires unused on June 20. July: usage."""
    lic = LicenseFactory(key="BRIDGE-0001", timezone="America/New_York")
    tz = lic.tzinfo
    buy(lic, "20", "may-buy", at=datetime(2025, 5, 10, 12, tzinfo=tz))
    with time_machine.travel(datetime(2025, 6, 2, 12, tzinfo=tz), tick=False):
        goodwill = grant(lic, "5", billing_user, reason="goodwill")
    card = buy(lic, "10", "pi_june", at=datetime(2025, 6, 3, 12, tzinfo=tz)).entry
    with time_machine.travel(datetime(2025, 6, 4, 12, tzinfo=tz), tick=False):
        spend(lic, "3")
    charge = LedgerEntry.objects.get(license=lic, kind="usage")
    with time_machine.travel(datetime(2025, 6, 5, 12, tzinfo=tz), tick=False):
        refund(lic, charge, "1", billing_user)
    with time_machine.travel(datetime(2025, 6, 6, 12, tzinfo=tz), tick=False):
        purchase_refund_record(
            license=lic, purchase=card, amount=D("4"), external_id="re:june", reason="asked"
        )
    with time_machine.travel(datetime(2025, 6, 7, 12, tzinfo=tz), tick=False):
        promo = grant(lic, "2", billing_user, expires_at=datetime(2025, 6, 20, tzinfo=tz))
    with time_machine.travel(datetime(2025, 6, 21, tzinfo=tz), tick=False):
        credits_expire()
    with time_machine.travel(datetime(2025, 7, 3, 12, tzinfo=tz), tick=False):
        spend(lic, "1.5")
    # Usage paid with promotional credit first: the goodwill (the promotion came later).
    assert (remaining(goodwill), remaining(card), remaining(promo)) == (D("1.5"), D("6"), 0)
    return lic


def test_the_bridge_holds_lifetime_and_per_month_with_every_movement(every_kind: License) -> None:
    lic = every_kind
    balance = balance_get(lic)
    lifetime = bridge_lifetime(balance)
    assert lifetime == Bridge(
        opening=D("0"), purchases=D("30"), purchase_refunds=D("4"), credits=D("7"),
        usage_refunds=D("1"), usage=D("4.5"), expired=D("2"), closing=D("27.5"),
    )  # fmt: skip
    assert lifetime.holds and balance.balance == D("27.5")
    # "Total Purchased" is gross, the card refund beside it.
    assert (balance.total_purchased, balance.total_purchase_refunded) == (D("30"), D("4"))
    assert_ledger_consistent(lic)

    june = bridge_month(license_id=lic.pk, timezone=lic.timezone, month=date(2025, 6, 1)).bridge
    assert june == Bridge(
        opening=D("20"), purchases=D("10"), purchase_refunds=D("4"), credits=D("7"),
        usage_refunds=D("1"), usage=D("3"), expired=D("2"), closing=D("29"),
    )  # fmt: skip
    months = [date(2025, 5, 1), date(2025, 6, 1), date(2025, 7, 1)]
    bridges = [
        bridge_month(license_id=lic.pk, timezone=lic.timezone, month=m).bridge for m in months
    ]
    assert all(b.holds for b in bridges)
    # Months chain: each closes where the next opens, and the last closes at the balance.
    assert [b.closing for b in bridges[:-1]] == [b.opening for b in bridges[1:]]
    assert bridges[-1].closing == balance.balance
    # The statement states the same bridge, and its older lines still add up.
    figures = statement_month(license=lic, month=date(2025, 6, 1))
    assert figures.bridge == june and figures.balances
    assert figures.refunds == D("1") - D("4")
    reconciles(lic, *months)


def test_the_credit_split_and_the_months_grants(every_kind: License) -> None:
    lic = every_kind
    split = credit_balances_get(lic)
    assert (split.paid, split.promotional, split.next_expiry) == (D("26"), D("1.5"), None)
    assert split.total == balance_get(lic).balance
    june = grant_month_get(license=lic, month=date(2025, 6, 1))
    assert (june.paid_sold, june.promotional_granted) == (D("10"), D("7"))
    assert (june.paid_consumed, june.promotional_consumed) == (D("0"), D("2"))  # 3 − 1 back
    assert (june.paid_refunded, june.paid_expired, june.promotional_expired) == (D("4"), 0, D("2"))
    assert (june.paid_outstanding, june.promotional_outstanding) == (D("26"), D("3"))
    july = grant_month_get(license=lic, month=date(2025, 7, 1))
    assert (july.promotional_consumed, july.paid_outstanding) == (D("1.5"), D("26"))
    assert [g.amount for g in grants_granted_in(license=lic, month=date(2025, 6, 1))] == [
        D("5"), D("10"), D("2"),
    ]  # fmt: skip
    [expired] = grants_expired_in(license=lic, month=date(2025, 6, 1))
    assert expired.expired == D("2") and expired.expiry_entry is not None
    # The reconciliation carries the same figures.
    (row,) = reconciliation_month(month=date(2025, 6, 1), license=lic).rows
    assert row.grants == june


# --- expiry --------------------------------------------------------------------------------


@pytest.fixture
def utc_license(db: None) -> License:
    return LicenseFactory(key="GRANTS-0001", timezone="UTC")


def t(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 6, day, hour, tzinfo=UTC)


def expiries(license: License) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.for_license(license).filter(kind="expiry"))


def test_a_promotional_grant_that_expires_unused_leaves_the_balance_once(
    utc_license: License, billing_user: User
) -> None:
    buy(utc_license, "10", at=t(1))
    with time_machine.travel(t(2), tick=False):
        promo = grant(utc_license, "5", billing_user, expires_at=t(10, 0))
    assert balance_get(utc_license).balance == D("15")
    with time_machine.travel(t(9), tick=False):
        assert credits_expire().expired == []  # not due yet
    with time_machine.travel(t(11), tick=False):
        first = credits_expire()
        again = credits_expire()
    assert [e.amount for e in first.expired] == [D("5")] and again.expired == []
    [entry] = expiries(utc_license)
    assert entry.amount == D("-5") and entry.occurred_at == t(10, 0)
    assert entry.external_id == f"expiry:{grant_of(promo).pk}"
    assert entry.movement.label == "Expired credit"
    assert balance_get(utc_license).balance == D("10")
    assert balance_get(utc_license).total_expired == D("5")
    assert grant_of(promo).expiry_entry_id == entry.pk
    assert_ledger_consistent(utc_license)
    reconciles(utc_license, date(2025, 6, 1))


def test_a_half_used_grant_expires_only_its_remainder(
    utc_license: License, billing_user: User
) -> None:
    buy(utc_license, "10", at=t(1))
    with time_machine.travel(t(2), tick=False):
        promo = grant(utc_license, "5", billing_user, expires_at=t(10, 0))
    with time_machine.travel(t(3), tick=False):
        spend(utc_license, "2")  # from the promotion first
    assert (remaining(promo), balance_get(utc_license).balance) == (D("3"), D("13"))
    with time_machine.travel(t(11), tick=False):
        credits_expire()
    [entry] = expiries(utc_license)
    assert entry.amount == D("-3")
    assert balance_get(utc_license).balance == D("10")
    assert credit_balances_get(utc_license).paid == D("10")
    assert_ledger_consistent(utc_license)


def test_paid_credit_never_expires_unless_a_date_is_given(
    utc_license: License, billing_user: User
) -> None:
    undated = buy(utc_license, "10", at=t(1)).entry
    with time_machine.travel(t(2), tick=False):
        dated = grant(utc_license, "4", billing_user, kind="paid", expires_at=t(20, 0))
    assert grant_of(undated).expires_at is None
    assert grant_of(dated).kind == "paid" and dated.kind == "purchase"
    with time_machine.travel(t(3), tick=False):
        spend(utc_license, "1")  # paid credit: the dated one first
    with time_machine.travel(datetime(2035, 1, 1, tzinfo=UTC), tick=False):
        credits_expire()
    [entry] = expiries(utc_license)
    assert entry.amount == D("-3")
    assert remaining(undated) == D("10") and grant_of(undated).expired_at is None
    assert_ledger_consistent(utc_license)


def test_nothing_expires_when_usage_took_the_balance_below_zero(
    utc_license: License, billing_user: User
) -> None:
    with time_machine.travel(t(2), tick=False):
        promo = grant(utc_license, "5", billing_user, expires_at=t(10, 0))
    with time_machine.travel(t(3), tick=False):
        spend(utc_license, "7")  # recorded past zero (invariant 5)
    assert balance_get(utc_license).balance == D("-2") and remaining(promo) == 0
    with time_machine.travel(t(11), tick=False):
        credits_expire()
    assert expiries(utc_license) == []
    assert grant_of(promo).expired_at is not None and grant_of(promo).expired == 0
    # The next credit pays for the usage past zero first.
    paid = buy(utc_license, "10", at=t(12)).entry
    assert grant_of(paid).consumed == D("2") and remaining(paid) == D("8")
    assert_ledger_consistent(utc_license)


# --- consumption ---------------------------------------------------------------------------


def test_usage_consumes_promotional_credit_first_soonest_expiry_first(
    utc_license: License, billing_user: User
) -> None:
    paid = buy(utc_license, "10", at=t(1)).entry
    with time_machine.travel(t(2), tick=False):
        later = grant(utc_license, "5", billing_user, expires_at=t(30, 0))
        sooner = grant(utc_license, "5", billing_user, expires_at=t(20, 0))
        never = grant(utc_license, "5", billing_user)
    with time_machine.travel(t(3), tick=False):
        spend(utc_license, "7")
    assert [remaining(g) for g in (sooner, later, never, paid)] == [0, D("3"), D("5"), D("10")]
    split = credit_balances_get(utc_license)
    assert (split.paid, split.promotional) == (D("10"), D("8"))
    assert split.next_expiry is not None and split.next_expiry.at == t(30, 0)
    assert split.next_expiry.amount == D("3")
    with time_machine.travel(t(4), tick=False):
        spend(utc_license, "10")
    assert [remaining(g) for g in (sooner, later, never, paid)] == [0, 0, 0, D("8")]
    assert_ledger_consistent(utc_license)


def test_a_usage_refund_gives_back_the_last_credit_used_first(
    utc_license: License, billing_user: User
) -> None:
    paid = buy(utc_license, "10", at=t(1)).entry
    with time_machine.travel(t(2), tick=False):
        promo = grant(utc_license, "5", billing_user, expires_at=t(10, 0))
    with time_machine.travel(t(3), tick=False):
        spend(utc_license, "8")  # the promotion's 5, then 3 of the paid credit
    charge = LedgerEntry.objects.get(license=utc_license, kind="usage")
    with time_machine.travel(t(4), tick=False):
        refund(utc_license, charge, "4", billing_user)
    # The paid 3 came back first, then 1 of the promotion.
    assert (remaining(paid), remaining(promo)) == (D("10"), D("1"))
    with time_machine.travel(t(11), tick=False):
        credits_expire()
    with time_machine.travel(t(12), tick=False):
        refund(utc_license, charge, "4", billing_user)
    # What the expired promotion paid for comes back as a grant of its own, never expiring.
    refund_grant = CreditGrant.objects.get(license=utc_license, entry__kind="refund")
    assert (refund_grant.kind, refund_grant.amount, refund_grant.expires_at) == (
        "promotional", D("4"), None,
    )  # fmt: skip
    assert balance_get(utc_license).balance == D("14")
    assert_ledger_consistent(utc_license)
    reconciles(utc_license, date(2025, 6, 1))


def test_a_card_refund_takes_from_its_purchase_and_what_was_used_is_paid_again(
    utc_license: License, billing_user: User
) -> None:
    first = buy(utc_license, "10", "pi_one", at=t(1)).entry
    second = buy(utc_license, "5", "pi_two", at=t(2)).entry
    with time_machine.travel(t(3), tick=False):
        spend(utc_license, "8")  # oldest paid credit first
    assert (remaining(first), remaining(second)) == (D("2"), D("5"))
    with time_machine.travel(t(4), tick=False):
        purchase_refund_record(
            license=utc_license, purchase=first, amount=D("6"), external_id="re:1", reason="x"
        )
    assert (grant_of(first).refunded, grant_of(first).consumed) == (D("6"), D("4"))
    assert (remaining(first), remaining(second)) == (0, D("1"))
    with time_machine.travel(t(5), tick=False):
        purchase_refund_record(
            license=utc_license, purchase=second, amount=D("5"), external_id="re:2", reason="x"
        )
    assert balance_get(utc_license).balance == D("-4")
    assert (remaining(first), remaining(second)) == (0, 0)
    assert_ledger_consistent(utc_license)
    reconciles(utc_license, date(2025, 6, 1))


# --- concurrency ---------------------------------------------------------------------------


def in_threads(*work: Callable[[], object]) -> list[BaseException]:
    """Run each at the same instant in its own thread (its own connection); the errors."""
    start = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            start.wait()
            job()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


@pytest.fixture
def due_grants(billing_user: User) -> Iterator[tuple[License, User]]:
    """Six promotional grants already due (their expiry passed yesterday), beside paid credit."""
    lic = LicenseFactory(key="GRANTS-RACE-01", timezone="Asia/Kathmandu")
    buy(lic, "20", at=timezone.now() - timedelta(days=3))
    past = timezone.now() - timedelta(days=2)
    with time_machine.travel(past, tick=False):
        for n in range(6):
            grant(lic, "1.5", billing_user, expires_at=past + timedelta(hours=1 + n))
    yield lic, billing_user


@pytest.mark.django_db(transaction=True)
def test_expiry_run_twice_at_once_expires_each_grant_once(
    due_grants: tuple[License, User],
) -> None:
    lic, _ = due_grants
    assert in_threads(*[credits_expire for _ in range(4)]) == []
    assert len(expiries(lic)) == 6
    assert balance_get(lic).balance == D("20")
    assert_ledger_consistent(lic)


@pytest.mark.django_db(transaction=True)
def test_remainders_add_up_under_concurrent_usage_expiry_and_refunds(
    due_grants: tuple[License, User],
) -> None:
    lic, by = due_grants

    def usage() -> None:
        for _ in range(5):
            spend(lic, "0.35")

    def credits() -> None:
        for _ in range(3):
            grant(lic, "0.25", by)

    errors = in_threads(usage, usage, usage, credits_expire, credits_expire, credits)
    assert errors == []
    charge = LedgerEntry.objects.filter(license=lic, kind="usage").first()
    assert charge is not None
    errors = in_threads(
        lambda: refund(lic, charge, "0.1", by),
        lambda: refund(lic, charge, "0.1", by),
        usage,
        credits_expire,
    )
    assert errors == []
    assert_grants_consistent(lic)
    assert_ledger_consistent(lic)
    balance = balance_get(lic).balance
    assert credit_balances_get(lic).total == max(balance, D("0"))
    for month in {lic.local_month(timezone.now() - timedelta(days=d)) for d in range(4)}:
        rows = reconciliation_month(month=month, license=lic).rows
        assert all(r.ok for r in rows), [r.differences for r in rows]


# --- the billing team's view ---------------------------------------------------------------


def corrupt(sql: str, params: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def differences(license: License, month: date = date(2025, 6, 1)) -> list[str]:
    (row,) = reconciliation_month(month=month, license=license).rows
    return [d.what for d in row.differences]


def test_the_reconciliation_reports_grants_apart_from_the_ledger(
    utc_license: License, billing_user: User
) -> None:
    paid = buy(utc_license, "10", at=t(1)).entry
    with time_machine.travel(t(2), tick=False):
        promo = grant(utc_license, "5", billing_user, expires_at=t(10, 0))
        spend(utc_license, "1")
    assert differences(utc_license) == []
    corrupt(
        "UPDATE billing_creditgrant SET consumed = consumed + 1 WHERE id = %s",
        [grant_of(paid).pk],
    )
    assert differences(utc_license) == [
        "grants' remainders (the balance when positive)",
        "grant rollups paid consumed",
    ]
    corrupt(
        "UPDATE billing_creditgrant SET consumed = consumed - 1 WHERE id = %s", [grant_of(paid).pk]
    )
    corrupt("UPDATE billing_grantdailyrollup SET granted = 0 WHERE kind = 'promotional'", [])
    assert differences(utc_license) == [
        "grant rollups promotional granted",
        "grant rollups: promotional granted in the month",
    ]
    corrupt("DELETE FROM billing_grantdailyrollup WHERE license_id = %s", [utc_license.pk])
    corrupt("DELETE FROM billing_creditgrant WHERE id = %s", [grant_of(promo).pk])
    assert "grants of purchases and credits" in differences(utc_license)


def test_an_expiry_not_its_grants_is_reported(utc_license: License, billing_user: User) -> None:
    with time_machine.travel(t(2), tick=False):
        promo = grant(utc_license, "5", billing_user, expires_at=t(10, 0))
    with time_machine.travel(t(11), tick=False):
        credits_expire()
    assert differences(utc_license) == []
    corrupt(
        "UPDATE billing_creditgrant SET expiry_entry_id = NULL, expired = 0, expired_at = NULL,"
        " consumed = amount WHERE id = %s",
        [grant_of(promo).pk],
    )
    found = differences(utc_license)
    assert "expiries (one entry per expired grant)" in found and "grants expired" in found


def test_the_reconciliation_csv_carries_the_bridge_and_the_credit_by_kind(
    every_kind: License, tmp_path: Path
) -> None:
    path = tmp_path / "june.csv"
    call_command("reconcile_ledger", "--month", "2025-06", "--csv", str(path), stdout=StringIO())
    header, row = list(csv.reader(path.open(encoding="utf-8")))
    values = dict(zip(header, row, strict=True))
    assert header[:15] == list(RECONCILIATION_HEADER[:15])  # the old columns keep their places
    assert (values["purchases"], values["purchase_refunds"], values["credits"]) == (
        "10.000000", "4.000000", "7.000000",
    )  # fmt: skip
    assert (values["usage_refunds"], values["usage"], values["expired"]) == (
        "1.000000", "3.000000", "2.000000",
    )  # fmt: skip
    assert values["refunds"] == "-3.000000"  # the older column: usage refunds less card refunds
    assert (values["paid_sold"], values["promotional_granted"]) == ("10.000000", "7.000000")
    assert (values["paid_consumed"], values["promotional_consumed"]) == ("0.000000", "2.000000")
    assert (values["paid_expired"], values["promotional_expired"]) == ("0.000000", "2.000000")
    assert values["paid_outstanding"] == "26.000000"
    assert values["status"] == "ok"


def test_a_timezone_change_moves_the_months_grants_with_their_entries(
    utc_license: License, billing_user: User
) -> None:
    """A purchase at 23:30 UTC on June 30 is July's in Kathmandu (+05:45): after the change
    the month's paid credit sold follows the ledger's purchases, and both months reconcile."""
    from accounts.services import license_save

    buy(utc_license, "10", at=datetime(2025, 6, 30, 23, 30, tzinfo=UTC))
    with time_machine.travel(t(2), tick=False):
        grant(utc_license, "5", billing_user, expires_at=datetime(2025, 6, 30, 23, 45, tzinfo=UTC))
    with time_machine.travel(datetime(2025, 7, 2, tzinfo=UTC), tick=False):
        credits_expire()
    june, july = date(2025, 6, 1), date(2025, 7, 1)
    assert grant_month_get(license=utc_license, month=june).paid_sold == D("10")
    utc_license.timezone = "Asia/Kathmandu"
    license_save(acting_user=None, license=utc_license)
    assert grant_month_get(license=utc_license, month=june).paid_sold == 0
    moved = grant_month_get(license=utc_license, month=july)
    assert (moved.paid_sold, moved.promotional_expired) == (D("10"), D("5"))
    assert_ledger_consistent(utc_license)
    reconciles(utc_license, june, july)
