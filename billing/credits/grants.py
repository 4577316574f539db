"""Credit grants kept with the ledger: the posting engine calls `grants_follow` in every
posting transaction, with the license's balance row locked, after its statement posted the
entries (billing.ledger.posting, billing.ledger.usage). So, under any concurrency, the
remainders of a license's grants add up to its balance when it is positive and are all zero
otherwise (invariant 13), the way the rollups add up to the entries (invariant 1).

What each posted movement does to the grants (docs/product.md, "Credit grants"):
- a purchase opens a paid grant, a credit a promotional one, each with its expiry if one
  was given (`expires`, by external id; paid credit never expires unless dated);
- a purchase refund (money back to the card) takes from its purchase's grant: from what
  is left of it first; what was already used of it stays used but is no longer paid for
  by it, so it is consumed again from the other grants (or the balance goes below zero);
- an expiry closes its grant (billing.credits.expiry posts exactly its remainder);
- then usage is settled (`grants_settle`, one statement): the grants' remainders are
  made to add up to the balance. Usage (net of usage refunds) consumes promotional grants
  first, soonest expiry first (undated last), then paid credit, soonest expiry first, then
  oldest first (CONSUMPTION_ORDER). A usage refund gives credit back to the grants in the
  reverse order (the last credit used is the first given back), never to an expired one;
  what no open grant can take back (the credit it was paid with has expired or been
  refunded since) becomes a promotional grant of its own, without expiry.

Consumption is one running amount per grant, updated once per posting transaction: a sync
page of a thousand records is one UPDATE of the few open grants (index credit_grant_open)
and one upsert of the day's GrantDailyRollup, never a row or a line of Python per entry.
Usage recorded past zero (invariant 5) leaves every remainder at zero; the credit that
comes in next pays for it first."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from django.db import connection

from accounts.models import License
from billing.ledger.kinds import (
    CREDIT,
    EXPIRY,
    PURCHASE,
    PURCHASE_REFUND,
    USAGE_REFUND,
    movement_of,
)
from billing.models import GRANT_SUMS, CreditGrant, GrantKind
from billing.money import ZERO, format_money

# Which grant usage consumes first: promotional before paid, then the soonest to expire
# (undated last), then the oldest. Over billing_creditgrant columns.
CONSUMPTION_ORDER = "(kind = 'paid'), expires_at NULLS LAST, granted_at, id"


# What a usage refund gives back first: the reverse (the last consumed, first restored).
GIVE_BACK_ORDER = "(kind = 'paid') DESC, expires_at DESC NULLS FIRST, granted_at DESC, id DESC"


# An expiry entry's external id names its grant: one expiry per grant, ever (the ledger's
# unique (license, external id), and the grant's one-to-one expiry_entry).
_EXPIRY_PREFIX = "expiry:"


def expiry_external_id(grant_id: int) -> str:
    return f"{_EXPIRY_PREFIX}{grant_id}"


def expiry_grant_id(external_id: str) -> int | None:
    """The grant an expiry entry's external id names (None: not an expiry's)."""
    if not external_id.startswith(_EXPIRY_PREFIX):
        return None
    number = external_id.removeprefix(_EXPIRY_PREFIX)
    return int(number) if number.isascii() and number.isdigit() else None


class GrantsBroken(RuntimeError):
    """A posting that would leave the grants and the ledger apart: a bug, rolled back."""


# One day's change to a kind of grant (GrantDailyRollup): the day is the local date, in
# the license's timezone, of `at`.
_ROLLUP_ADD_SQL = (
    """
INSERT INTO billing_grantdailyrollup (license_id, day, kind, """
    + ", ".join(GRANT_SUMS)
    + """)
VALUES (%(license_id)s, (%(at)s::timestamptz AT TIME ZONE %(tz)s)::date, %(kind)s, """
    + ", ".join(f"%({name})s" for name in GRANT_SUMS)
    + """)
ON CONFLICT (license_id, day, kind) DO UPDATE SET """
    + ", ".join(
        f"{name} = billing_grantdailyrollup.{name} + EXCLUDED.{name}" for name in GRANT_SUMS
    )
)


def _rollup_add(cursor: Any, *, license: License, at: datetime, kind: str, **sums: Decimal) -> None:
    values = {name: sums.get(name, ZERO) for name in GRANT_SUMS}
    cursor.execute(
        _ROLLUP_ADD_SQL,
        {"license_id": license.pk, "at": at, "tz": license.timezone, "kind": kind, **values},
    )


# Usage settled: the open grants' remainders made to add up to the balance (when it is
# positive; to zero otherwise) by consuming the excess in CONSUMPTION_ORDER, with the day's
# consumption added to the grant rollups. Answers the excess: negative when the grants hold
# less than the balance (a usage refund came in: give back).
_SETTLE_SQL = f"""
WITH open AS (
    SELECT id, kind, remaining, sum(remaining) OVER (ORDER BY {CONSUMPTION_ORDER}) AS upto
    FROM billing_creditgrant
    WHERE license_id = %(license_id)s AND remaining > 0
),
need AS (
    SELECT coalesce(max(upto), 0) - greatest(%(balance)s::numeric, 0) AS excess FROM open
),
take AS (
    SELECT o.id, o.kind, least(o.remaining, need.excess - (o.upto - o.remaining)) AS amount
    FROM open AS o, need
    WHERE need.excess > 0 AND o.upto - o.remaining < need.excess
),
consumed AS (
    UPDATE billing_creditgrant AS g SET consumed = g.consumed + t.amount
    FROM take AS t WHERE g.id = t.id
    RETURNING t.kind, t.amount
),
rolled AS (
    INSERT INTO billing_grantdailyrollup (license_id, day, kind, {", ".join(GRANT_SUMS)})
    SELECT %(license_id)s, (%(now)s::timestamptz AT TIME ZONE %(tz)s)::date, kind,
           0, sum(amount), 0, 0
    FROM consumed GROUP BY kind
    ON CONFLICT (license_id, day, kind) DO UPDATE SET
        consumed = billing_grantdailyrollup.consumed + EXCLUDED.consumed
)
SELECT excess FROM need
"""  # noqa: S608


# A usage refund's credit given back (%(short)s > 0) in GIVE_BACK_ORDER to grants not
# expired, each up to what was consumed of it. Answers what none of them could take.
_GIVE_BACK_SQL = f"""
WITH back AS (
    SELECT id, kind, consumed, sum(consumed) OVER (ORDER BY {GIVE_BACK_ORDER}) AS upto
    FROM billing_creditgrant
    WHERE license_id = %(license_id)s AND consumed > 0 AND expired_at IS NULL
),
give AS (
    SELECT id, kind, least(consumed, %(short)s - (upto - consumed)) AS amount
    FROM back WHERE upto - consumed < %(short)s
),
given AS (
    UPDATE billing_creditgrant AS g SET consumed = g.consumed - v.amount
    FROM give AS v WHERE g.id = v.id
    RETURNING v.kind, v.amount
),
rolled AS (
    INSERT INTO billing_grantdailyrollup (license_id, day, kind, {", ".join(GRANT_SUMS)})
    SELECT %(license_id)s, (%(now)s::timestamptz AT TIME ZONE %(tz)s)::date, kind,
           0, -sum(amount), 0, 0
    FROM given GROUP BY kind
    ON CONFLICT (license_id, day, kind) DO UPDATE SET
        consumed = billing_grantdailyrollup.consumed + EXCLUDED.consumed
)
SELECT %(short)s::numeric - coalesce((SELECT sum(amount) FROM given), 0)
"""  # noqa: S608


def grants_settle(
    cursor: Any,
    *,
    license: License,
    balance: Decimal,
    now: datetime,
    refund_entry: "PostedEntry | None" = None,
) -> None:
    """Make the license's grants add up to `balance` (the balance after this transaction's
    postings): consume what they hold beyond it, or give back what they lack (a usage
    refund, `refund_entry`, came in). Inside the posting transaction, the balance locked."""
    params = {"license_id": license.pk, "balance": balance, "now": now, "tz": license.timezone}
    cursor.execute(_SETTLE_SQL, params)
    excess = cursor.fetchone()[0]
    if excess >= 0:
        return
    cursor.execute(_GIVE_BACK_SQL, {**params, "short": -excess})
    left = cursor.fetchone()[0]
    if left <= 0:
        return
    if refund_entry is None:
        raise GrantsBroken(
            f"license {license.key}: its grants hold {format_money(-excess)} less than its "
            "balance, and no usage refund came in to explain it"
        )
    # No open grant can take it back: the refund is a grant of its own.
    _grant_open(
        cursor,
        license=license,
        entry=refund_entry,
        kind=GrantKind.PROMOTIONAL,
        amount=left,
        expires_at=None,
    )


class PostedEntry(Protocol):
    """A ledger entry just posted, as grants_follow reads it."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def service(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def external_id(self) -> str: ...
    @property
    def refund_of_id(self) -> int | None: ...


def _grant_open(
    cursor: Any,
    *,
    license: License,
    entry: PostedEntry,
    kind: str,
    amount: Decimal,
    expires_at: datetime | None,
) -> None:
    CreditGrant.objects.create(
        license=license,
        kind=kind,
        entry_id=entry.id,
        amount=amount,
        granted_at=entry.occurred_at,
        expires_at=expires_at,
    )
    _rollup_add(cursor, license=license, at=entry.occurred_at, kind=kind, granted=amount)


def _grant_refund(cursor: Any, *, license: License, entry: PostedEntry, now: datetime) -> None:
    """A purchase refund taken from its purchase's grant: what is left of it first; the rest
    from what was consumed of it (consumed again from other grants by the settle). Only
    what was neither expired nor refunded before can be refunded from it."""
    grant = CreditGrant.objects.for_license(license).filter(entry_id=entry.refund_of_id).first()
    if grant is None:
        raise GrantsBroken(f"purchase #{entry.refund_of_id} has no grant to refund")
    refundable = grant.amount - grant.expired - grant.refunded
    applied = min(-entry.amount, refundable)
    refunded = grant.refunded + applied
    consumed = min(grant.consumed, grant.amount - grant.expired - refunded)
    CreditGrant.objects.filter(pk=grant.pk).update(refunded=refunded, consumed=consumed)
    _rollup_add(cursor, license=license, at=entry.occurred_at, kind=grant.kind, refunded=applied)
    if consumed != grant.consumed:
        _rollup_add(
            cursor, license=license, at=now, kind=grant.kind, consumed=consumed - grant.consumed
        )


def _grant_expire(cursor: Any, *, license: License, entry: PostedEntry, now: datetime) -> None:
    """An expiry entry closes the grant its external id names, for exactly its remainder."""
    grant_id = expiry_grant_id(entry.external_id)
    grant = (
        CreditGrant.objects.for_license(license).filter(pk=grant_id).first()
        if grant_id is not None
        else None
    )
    if grant is None or grant.expired_at is not None or grant.remaining != -entry.amount:
        raise GrantsBroken(
            f"expiry {entry.external_id} of {format_money(entry.amount)} is not what is left "
            "of an open grant"
        )
    CreditGrant.objects.filter(pk=grant.pk).update(
        expired=-entry.amount, expired_at=now, expiry_entry_id=entry.id
    )
    _rollup_add(
        cursor, license=license, at=entry.occurred_at, kind=grant.kind, expired=-entry.amount
    )


def grant_close(*, license: License, grant: CreditGrant, now: datetime) -> None:
    """Close an expired grant with nothing left (no expiry entry to post). Inside the
    transaction holding the license's balance lock."""
    if grant.remaining != 0 or grant.expired_at is not None:
        raise GrantsBroken(f"grant #{grant.pk} still has {format_money(grant.remaining)} left")
    CreditGrant.objects.filter(pk=grant.pk).update(expired_at=now)


_POSTED_SQL = """
SELECT id, kind, amount, service, occurred_at, external_id, refund_of_id
FROM billing_ledgerentry
WHERE license_id = %(license_id)s AND external_id = ANY(%(external_ids)s)
ORDER BY id
"""


class _Posted:
    __slots__ = ("amount", "external_id", "id", "kind", "occurred_at", "refund_of_id", "service")

    def __init__(self, row: tuple) -> None:
        (
            self.id,
            self.kind,
            self.amount,
            self.service,
            self.occurred_at,
            self.external_id,
            self.refund_of_id,
        ) = row


def grants_follow(
    *,
    license: License,
    external_ids: Sequence[str],
    balance: Decimal,
    now: datetime,
    expires: Mapping[str, datetime] | None = None,
) -> None:
    """What this transaction's newly posted entries other than usage (`external_ids`) do
    to the license's grants, then usage settled against the balance after (`balance`).
    Inside the posting transaction, the balance row locked."""
    expires = expires or {}
    refund_entry = None
    with connection.cursor() as cursor:
        if external_ids:
            cursor.execute(
                _POSTED_SQL, {"license_id": license.pk, "external_ids": list(external_ids)}
            )
            for entry in map(_Posted, cursor.fetchall()):
                movement = movement_of(entry.kind, entry.amount, entry.service)
                if movement in (PURCHASE, CREDIT):
                    _grant_open(
                        cursor,
                        license=license,
                        entry=entry,
                        kind=GrantKind.PAID if movement is PURCHASE else GrantKind.PROMOTIONAL,
                        amount=entry.amount,
                        expires_at=expires.get(entry.external_id),
                    )
                elif movement is PURCHASE_REFUND:
                    _grant_refund(cursor, license=license, entry=entry, now=now)
                elif movement is EXPIRY:
                    _grant_expire(cursor, license=license, entry=entry, now=now)
                elif movement is USAGE_REFUND:
                    refund_entry = entry
        grants_settle(cursor, license=license, balance=balance, now=now, refund_entry=refund_entry)
