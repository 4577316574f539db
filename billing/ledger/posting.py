"""The posting engine: the only way entries enter the ledger.

Every money movement runs in one transaction that first locks the license's balance row
(`lock_balance`), so movements on one license are serialized. Entries are posted by one
set-based statement (`post_entries`) that inserts them, skipping external ids already
present, and adds exactly what it inserted to the daily rollups and the balance totals
(billing.ledger.totals). The same statement keeps closed months closed (billing.closing): an entry
dated before the end of the latest closed month is dated when it is posted instead, with
its own time kept in `original_occurred_at` and a note in its description. Usage comes as
one row per record and the statement drafts its entries itself (billing.ledger.usage). The
money flows (purchases, charges, refunds) decide what to post; this module decides how.

The credit grants are kept in the same transaction, after the statement, from what it
posted (billing.credits.grants.grants_follow): the grants' remainders add up to the
balance after every posting (invariant 13)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, get_type_hints

import psycopg
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import License
from billing.credits.grants import grants_follow
from billing.ledger.totals import BALANCE_TOTALS, TOTAL_NAMES, sums_select_sql, totals_of
from billing.models import ROLLUP_SUMS, LedgerEntry, LicenseBalance
from billing.money import MONEY_MAX, format_money, money_exact, quantize_money
from portal.exceptions import ApplicationError

Kind = LedgerEntry.Kind


class EntryDraft(NamedTuple):
    """An entry to post. A named tuple, not a dataclass: a sync makes a thousand per page,
    and a frozen dataclass costs three times as much to create."""

    kind: str
    amount: Decimal
    occurred_at: datetime
    external_id: str
    service: str = ""
    tokens: int = 0
    images: int = 0
    api_calls: int = 0
    description: str = ""
    refund_of_id: int | None = None
    reason: str = ""
    created_by_id: int | None = None
    request_id: str = ""
    endpoint: str = ""
    status: str = ""


@dataclass(frozen=True)
class PostResult:
    inserted_external_ids: list[str]
    balance_before: Decimal
    balance_after: Decimal


def _rollup_adds(table: str) -> str:
    """An upsert's SET list: each of a rollup's sums (RollupSums) plus the new rows'."""
    return ", ".join(f"{m} = {table}.{m} + EXCLUDED.{m}" for m in ROLLUP_SUMS)


# The drafts reach the posting statement through a temporary table of this session,
# COPYed in (sending them as JSON instead cost as much in Python and, on the server, a
# jsonb parse and fifteen field extractions an entry: 15 % more of PostgreSQL's time than
# the inserts themselves). The statement empties it as it reads it, and every commit
# empties it too. Each table is made from its draft's named tuple (_DraftTable), so the
# table, the COPY and the rows cannot disagree. The COPY is psycopg's default, text: in
# binary it took ~5 µs less Python a usage record but changed the sync's rate by less
# than 10 % (docs/architecture.md, "Clever code, audited").
_SQL_TYPES: dict[Any, str] = {
    str: "text",
    Decimal: "numeric",
    datetime: "timestamptz",
    int: "int8",
    int | None: "int8",
}


@dataclass(frozen=True)
class _DraftTable:
    """The session's temporary table of a draft's rows: one column per field of the named
    tuple, in its order, of the SQL type of its annotation."""

    create_sql: str
    copy_sql: str


def _draft_table(name: str, draft: type[tuple]) -> _DraftTable:
    fields: tuple[str, ...] = draft._fields  # type: ignore[attr-defined]
    types = (_SQL_TYPES[hint] for hint in get_type_hints(draft).values())
    columns = ", ".join(f"{field} {sql}" for field, sql in zip(fields, types, strict=True))
    return _DraftTable(
        create_sql=f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns}) ON COMMIT DELETE ROWS",
        copy_sql=f"COPY {name} ({', '.join(fields)}) FROM STDIN",
    )


_DRAFT_TABLE = _draft_table("posting_draft", EntryDraft)


# The rollups and the totals are summed from `grouped`: the inserted entries summed once
# by local day, kind, service, endpoint and the sign of the amount (a page's 2,100 entries
# make a handful of groups), instead of each of the three reading every entry: they took
# a quarter of the statement's time (issue 27's profile). Within a group, every condition
# a total sums under (billing.ledger.totals: the movements' kind, service and sign of the
# amount) holds for all of its entries or none, so a group's sums are its entries' sums.
# `closed` is the end of the latest closed month in the license's timezone (NULL: none);
# a draft dated before it is posted now, in the open month, keeping its own time as
# original_occurred_at and saying so in its description (invariant 11). `{draft}` is
# where the drafts come from (posting_draft, or usage records expanded: post_usage);
# `{on_conflict}` and `{inserted_ids}` are where the two forms of the statement differ
# (post_entries).
_POST_SQL_FORM = (
    """
WITH {draft},
closed AS (
    SELECT ((max(month) + interval '1 month')::timestamp AT TIME ZONE %(tz)s) AS until
    FROM billing_closedmonth WHERE reopened_at IS NULL
),
inserted AS (
    INSERT INTO billing_ledgerentry (
        license_id, kind, service, amount, tokens, images, api_calls, description,
        occurred_at, original_occurred_at, recorded_at, external_id, refund_of_id, reason,
        created_by_id, request_id, endpoint, status
    )
    SELECT %(license_id)s, kind, service, amount, tokens, images, api_calls,
           CASE WHEN late THEN ltrim(left(description, 500 - length(note)) || note)
                ELSE description END,
           CASE WHEN late THEN open_at ELSE occurred_at END,
           CASE WHEN late THEN occurred_at END,
           %(now)s, external_id, refund_of_id, reason, created_by_id,
           request_id, endpoint, status
    FROM (
        SELECT d.*, coalesce(d.occurred_at < c.until, false) AS late,
               greatest(%(now)s, c.until) AS open_at,
               ' [late: dated ' || to_char(d.occurred_at AT TIME ZONE %(tz)s, 'YYYY-MM-DD HH24:MI')
               || ' in closed ' || to_char(d.occurred_at AT TIME ZONE %(tz)s, 'FMMonth YYYY')
               || '; posted in the open month]' AS note
        FROM draft AS d CROSS JOIN closed AS c
    ) AS placed
    {on_conflict}
    RETURNING kind, service, amount, tokens, images, api_calls, occurred_at, external_id,
              endpoint
),
grouped AS (
    SELECT (occurred_at AT TIME ZONE %(tz)s)::date AS day, kind, service, endpoint,
           sign(amount) AS sign, sum(amount) AS amount, sum(tokens) AS tokens,
           sum(images) AS images, sum(api_calls) AS api_calls, count(*) AS entries
    FROM inserted
    GROUP BY 1, 2, 3, 4, 5
),
rolled AS (
    INSERT INTO billing_dailyrollup (
        license_id, day, kind, service, amount, tokens, images, api_calls, entries
    )
    SELECT %(license_id)s, day, kind, service,
           sum(amount), sum(tokens), sum(images), sum(api_calls), sum(entries)
    FROM grouped
    GROUP BY 2, 3, 4
    ON CONFLICT (license_id, day, kind, service) DO UPDATE SET
        """
    + _rollup_adds("billing_dailyrollup")
    + """
),
rolled_by_endpoint AS (
    INSERT INTO billing_endpointdailyrollup (
        license_id, day, endpoint, service, amount, tokens, images, api_calls, entries
    )
    SELECT %(license_id)s, day, endpoint, service,
           sum(amount), sum(tokens), sum(images), sum(api_calls), sum(entries)
    FROM grouped
    WHERE kind = 'usage'
    GROUP BY 2, 3, 4
    ON CONFLICT (license_id, day, endpoint, service) DO UPDATE SET
        """
    + _rollup_adds("billing_endpointdailyrollup")
    + """
),
sums AS (
    SELECT """
    + sums_select_sql(counted="entries")
    + """
    FROM grouped
),
totals AS (
    UPDATE billing_licensebalance AS b SET
        """
    + ", ".join(f"{name} = b.{name} + s.{name}" for name in TOTAL_NAMES)
    + """,
        updated_at = %(now)s
    FROM sums AS s
    WHERE b.license_id = %(license_id)s
    RETURNING b.balance
)
SELECT (SELECT balance FROM totals), (SELECT count(*) FROM inserted), {inserted_ids}
"""
)


# The two forms. Every draft new (a page of usage seen for the first time, a purchase's
# first posting): a plain INSERT, which fails on the first external id already in the
# ledger. Otherwise (a replay, a retry): ON CONFLICT DO NOTHING skips those. The plain
# form is tried first, under a savepoint: probing the unique index before each insert
# (ON CONFLICT) cost PostgreSQL about a fifth of the sync's posting time (benchmark 3),
# and a conflict costs only the failed statement, undone with its savepoint.
# The plain form inserts every draft or fails, so it need not say which it inserted.
_ON_CONFLICT = "ON CONFLICT (license_id, external_id) DO NOTHING"


_INSERTED_IDS = "coalesce((SELECT array_agg(external_id) FROM inserted), '{}')"


_DRAFTS = "draft AS (DELETE FROM posting_draft RETURNING *)"


_POST_NEW_SQL = _POST_SQL_FORM.format(draft=_DRAFTS, on_conflict="", inserted_ids="NULL")


_POST_SQL = _POST_SQL_FORM.format(
    draft=_DRAFTS, on_conflict=_ON_CONFLICT, inserted_ids=_INSERTED_IDS
)


def lock_balance(license: License) -> LicenseBalance:
    """Lock (creating if needed) the license's balance row for this transaction.

    Also re-reads the license's timezone once the lock is held: the caller's License may
    have been loaded before a timezone change, and `rollups_rebuild` (run by that change
    under this same lock) would otherwise be followed by entries rolled up into the old
    timezone's days.
    """
    try:
        balance = LicenseBalance.objects.select_for_update().get(license=license)
    except LicenseBalance.DoesNotExist:
        # A license's first posting (the row is kept from then on).
        LicenseBalance.objects.get_or_create(license=license)
        balance = LicenseBalance.objects.select_for_update().get(license=license)
    license.refresh_from_db(fields=["timezone"])
    return balance


def exact_amount(amount: Decimal) -> Decimal:
    """An amount a person or payment system gave, refused (not rounded) if it has >6 places."""
    try:
        return money_exact(amount)
    except ValueError as exc:
        raise ApplicationError(f"Amount: {exc}.", field="amount") from exc


def post_entries(
    *,
    license: License,
    balance: LicenseBalance,
    drafts: Sequence[EntryDraft],
    expires: Mapping[str, datetime] | None = None,
) -> PostResult:
    """Insert drafts not yet in the ledger and add them to rollups, totals and the credit
    grants. `expires`: when the grant a purchase or credit opens expires, by its external
    id (none given: never).

    Must run inside the transaction that holds `balance` locked.
    """
    if not drafts:
        return PostResult([], balance.balance, balance.balance)
    for d in drafts:
        if d.amount != quantize_money(d.amount):
            raise ValueError(f"amount {d.amount} is not quantized to 6 places")
    totals_refuse_overflow(balance, drafts)
    params = _posting_params(license)
    with connection.cursor() as cursor:
        _copy_rows(cursor, _DRAFT_TABLE, drafts)
        balance_after, _, inserted = _post_once(cursor, _POST_NEW_SQL, _POST_SQL, params)
    if inserted is None:  # the plain form: every draft
        inserted = [d.external_id for d in drafts]
    before, after = _balance_moved(balance, balance_after)
    if inserted:
        new = set(inserted)
        grants_follow(
            license=license,
            external_ids=[
                d.external_id for d in drafts if d.kind != Kind.USAGE and d.external_id in new
            ],
            balance=after,
            now=params["now"],
            expires=expires,
        )
    return PostResult(list(inserted), before, after)


def _posting_params(license: License) -> dict[str, Any]:
    """What every form of the posting statement takes: the license, its timezone (for the
    closed months) and the moment of posting."""
    return {"license_id": license.pk, "tz": license.timezone, "now": timezone.now()}


def _copy_rows(cursor: Any, table: _DraftTable, rows: Sequence[tuple]) -> None:
    """The rows into the session's temporary table the posting statement reads."""
    cursor.execute(table.create_sql)
    with cursor.connection.cursor().copy(table.copy_sql) as copy:
        for row in rows:
            copy.write_row(row)


def _post_once(cursor: Any, new_sql: str, sql: str, params: dict[str, Any]) -> tuple:
    """Run the posting statement's plain form, under a savepoint; if an external id is
    already in the ledger, the form that skips those (the savepoint undid the failed one,
    the temporary table's rows included). Its row: balance after, entries inserted, their
    external ids (None from the plain form: all of them)."""
    try:
        with transaction.atomic():
            cursor.execute(new_sql, params)
    except IntegrityError as exc:
        if not _external_id_taken(exc):
            raise
        cursor.execute(sql, params)
    return cursor.fetchone()


def _balance_moved(balance: LicenseBalance, balance_after: Decimal | None) -> tuple:
    """(before, after) of a posting, and `balance` brought up to date (None: nothing posted)."""
    before = balance.balance
    balance.balance = balance_after if balance_after is not None else before
    return before, balance.balance


def _external_id_taken(exc: IntegrityError) -> bool:
    """Whether the plain INSERT failed only because an external id is already posted."""
    cause = exc.__cause__
    return (
        isinstance(cause, psycopg.errors.UniqueViolation)
        and cause.diag.constraint_name == "ledger_external_id_unique"
    )


def post_entry(
    *,
    license: License,
    balance: LicenseBalance,
    draft: EntryDraft,
    expires_at: datetime | None = None,
) -> tuple[PostResult, LedgerEntry]:
    """Post one draft (a purchase, a refund, a credit, an expiry) and return the entry as
    stored: the one just inserted, or the one a retry under the same external id already
    posted. `expires_at`: when the grant a purchase or credit opens expires (None: never)."""
    expires = {draft.external_id: expires_at} if expires_at is not None else None
    posted = post_entries(license=license, balance=balance, drafts=[draft], expires=expires)
    entry = LedgerEntry.objects.for_license(license).get(external_id=draft.external_id)
    return posted, entry


def totals_can_take(balance: LicenseBalance, spread: Decimal) -> bool:
    """Whether entries adding up to at most `spread` in size leave every money total (and
    each entry) within what its column holds."""
    largest = max(abs(getattr(balance, t.name)) for t in BALANCE_TOTALS if t.is_money)
    return largest + spread <= MONEY_MAX


def totals_refuse_overflow(balance: LicenseBalance, drafts: Sequence[EntryDraft]) -> None:
    """Refuse drafts that would take an entry, the balance or a money total past what its
    column holds (MONEY_MAX), with a message naming it and the maximum: the database would
    refuse them too, as a 500. `balance` is the row as locked by this transaction.

    Cheap on the sync's path: only when the drafts' size could reach the limit are the
    totals worked out exactly. Drafts already in the ledger (a replay) are counted too, so
    a replay right at the limit is refused rather than skipped: only at $10^12."""
    spread = sum((abs(d.amount) for d in drafts), Decimal(0))
    if totals_can_take(balance, spread):
        return
    money_totals = [t for t in BALANCE_TOTALS if t.is_money]
    maximum = format_money(MONEY_MAX)
    for d in drafts:
        if abs(d.amount) > MONEY_MAX:
            raise ApplicationError(
                f"Amount: {format_money(d.amount)} is more than one entry holds "
                f"(at most {maximum}).",
                field="amount",
            )
    changes = totals_of(drafts)
    for t in money_totals:
        after = getattr(balance, t.name) + changes[t.name]
        if abs(after) > MONEY_MAX:
            what = "the balance" if t.name == "balance" else f"the total {t.label}"
            raise ApplicationError(
                f"Amount: this would take {what} to {format_money(after)}, more than the "
                f"most it can hold ({maximum}).",
                field="amount",
            )
