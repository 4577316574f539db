"""Usage posted: one row per upstream record, which the posting statement prices, rounds
and expands into one entry per service used (post_entries' twin for usage)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import connection

from accounts.models import License
from billing.credits.grants import grants_settle
from billing.ledger.posting import (
    _INSERTED_IDS,
    _ON_CONFLICT,
    _POST_SQL_FORM,
    EntryDraft,
    _balance_moved,
    _copy_rows,
    _draft_table,
    _post_once,
    _posting_params,
    totals_can_take,
    totals_refuse_overflow,
)
from billing.models import LicenseBalance, Service
from billing.money import MONEY_QUANT
from billing.prices.selectors import PriceBook


@dataclass(frozen=True)
class UsagePart:
    """One count of a usage record and what it is charged as: the `service` whose price
    applies, and the entry column (`measure`: tokens or images) its quantity goes in."""

    count: str
    service: str
    measure: str


# Which count of a record is charged as which service, in the order a record's entries are
# made (the first one used carries the API call). The only statement of it: the posting
# statement's drafting, the price check of a record (usage.services.records) and the
# tests derive from it.
USAGE_PARTS = (
    UsagePart("input_tokens", Service.AI_DATA, "tokens"),
    UsagePart("cached_tokens", Service.AI_DATA_CACHED, "tokens"),
    UsagePart("completion_tokens", Service.AI_DATA_COMPLETION, "tokens"),
    UsagePart("images", Service.AI_IMAGES, "images"),
)
USAGE_COUNTS = tuple(part.count for part in USAGE_PARTS)


# Calls per service (statements, the API's usage): each call is counted under one service,
# so the services' calls add up to the calls. An image call (one that made images) is an
# ai_images call; every other call (text, or a failed call that used nothing) is an ai_data
# call; cached and completion tokens are parts of a text call, never calls of their own.
# The stored api_calls flag is on a call's first entry in USAGE_PARTS' order (ai_data for
# an image call with a prompt, and the ledger is never rewritten), so the count is made
# from a period's sums instead: a call has at most one ai_images entry, so the image calls
# are the ai_images entries, and the rest of the calls are ai_data's.
def calls_per_service(sums: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    """The calls of each service in one period, from its usage sums by service:
    {service: (api_calls, entries)}. ai_data is there whenever it has calls."""
    calls = sum(api_calls for api_calls, _ in sums.values())
    images = sums[Service.AI_IMAGES][1] if Service.AI_IMAGES in sums else 0
    counted = dict.fromkeys(sums, 0)
    if images:
        counted[Service.AI_IMAGES] = images
    if calls - images or Service.AI_DATA in sums:
        counted[Service.AI_DATA] = calls - images
    return counted


# A usage entry's external id is "<record id>:<service>": one entry per service a record
# used, so (license, external id) being unique charges each record's service once.
_RECORD_SEPARATOR = ":"


def usage_external_id(record_id: str, service: str) -> str:
    return f"{record_id}{_RECORD_SEPARATOR}{service}"


def usage_external_ids(record_id: str) -> list[str]:
    """Every external id a record's charges can have."""
    return [usage_external_id(record_id, part.service) for part in USAGE_PARTS]


def usage_record_id(external_id: str) -> str:
    """A usage entry's upstream record id: its external id before the last separator."""
    return external_id.rsplit(_RECORD_SEPARATOR, 1)[0]


class UsageDraft(NamedTuple):
    """A usage record to charge, as the posting statement takes it: it prices, rounds and
    expands it into its entries (one per service used) itself. One row a record, not one an
    entry: drafting the entries in Python (a Decimal charge and a named tuple each) and
    writing their COPY rows was most of a sync's Python (benchmark 3). Its texts come as
    the entries store them: `description` is the label every entry of the record carries."""

    record_id: str
    occurred_at: datetime
    input_tokens: int
    cached_tokens: int
    completion_tokens: int
    images: int
    description: str
    request_id: str
    endpoint: str
    status: str


@dataclass(frozen=True)
class UsagePostResult:
    entries_inserted: int
    # The external ids inserted; None when every entry was new (the plain INSERT: the
    # sync's usual page, spared sending them back).
    inserted_external_ids: list[str] | None
    balance_before: Decimal
    balance_after: Decimal


_USAGE_TABLE = _draft_table("posting_usage", UsageDraft)


# A record's entries: one per service it used, in this order, the first carrying the API
# call; a call that used nothing (a failed call) is one zero charge on ai_data, priced at
# nothing. Each charge is the quantity at the unit price in effect at the record's time
# (the price book's periods, sent as arrays: [starts, until)), rounded once to 6 places:
# round(numeric, 6) rounds half away from zero, which for the product (a count ≥ 0 times
# a price ≥ 0) is half-up, as billing.money.charge_for; the charge is then negated. A
# quantity with no price in effect gives a NULL amount, which the ledger refuses (NOT
# NULL): usage_record_batch checks the prices first, so that would be a bug, never a
# silent zero. `{source}` is where the records come from.
_N = {part.count: n for n, part in enumerate(USAGE_PARTS, start=1)}
_USAGE_ENTRIES_SQL = (
    """
    SELECT 'usage'::text AS kind,
           CASE WHEN part.quantity = 0 THEN 0
                ELSE -round(part.quantity * price.unit_price, 6) END AS amount,
           r.occurred_at, r.record_id || '"""
    + _RECORD_SEPARATOR
    + """' || part.service AS external_id, part.service,
           CASE WHEN part.measure = 'tokens' THEN part.quantity ELSE 0 END AS tokens,
           CASE WHEN part.measure = 'images' THEN part.quantity ELSE 0 END AS images,
           (part.n = CASE """
    + " ".join(f"WHEN r.{part.count} > 0 THEN {_N[part.count]}" for part in USAGE_PARTS)
    + """
                          ELSE 1 END)::int::smallint AS api_calls,
           r.description, NULL::bigint AS refund_of_id, ''::text AS reason,
           NULL::bigint AS created_by_id, r.request_id, r.endpoint, r.status
    FROM {source} AS r
    CROSS JOIN LATERAL (VALUES
        """
    + ", ".join(
        f"({_N[part.count]}, '{part.service}', r.{part.count}, '{part.measure}')"
        for part in USAGE_PARTS
    )
    + """
    ) AS part (n, service, quantity, measure)
    LEFT JOIN unnest(%(price_service)s::text[], %(price_starts)s::timestamptz[],
                     %(price_until)s::timestamptz[], %(price_unit)s::numeric[])
        AS price (service, starts, until, unit_price)
        ON part.quantity > 0 AND price.service = part.service
        AND price.starts <= r.occurred_at AND (price.until IS NULL OR r.occurred_at < price.until)
    WHERE part.quantity > 0
       OR (part.n = 1 AND """
    + " AND ".join(f"r.{part.count} = 0" for part in USAGE_PARTS[1:])
    + ")\n"
)


_USAGE_DRAFTS = (
    "record AS (DELETE FROM posting_usage RETURNING *), draft AS ("
    + _USAGE_ENTRIES_SQL.format(source="record")
    + ")"
)


_POST_USAGE_NEW_SQL = _POST_SQL_FORM.format(
    draft=_USAGE_DRAFTS, on_conflict="", inserted_ids="NULL"
)


_POST_USAGE_SQL = _POST_SQL_FORM.format(
    draft=_USAGE_DRAFTS, on_conflict=_ON_CONFLICT, inserted_ids=_INSERTED_IDS
)


# The same entries, read without posting them: for the overflow check, when the page
# could come near what the totals hold.
_USAGE_PREVIEW_SQL = (
    "SELECT kind, amount, occurred_at, external_id, service, tokens, images, api_calls FROM ("
    + _USAGE_ENTRIES_SQL.format(source="posting_usage")
    + ") AS e"
)


def post_usage(
    *,
    license: License,
    balance: LicenseBalance,
    usage: Sequence[UsageDraft],
    prices: PriceBook,
    quantity: int,
) -> UsagePostResult:
    """Charge usage records (each record id once in `usage`) at `prices`, skipping the
    entries already in the ledger, and add them to rollups, totals and the credit grants'
    consumption: post_entries for
    usage, its entries drafted by the statement. `quantity` is the records' quantities
    added up (a bound on the charges, for the overflow check).

    Must run inside the transaction that holds `balance` locked; every record's quantities
    must have a price in effect in `prices`.
    """
    if not usage:
        return UsagePostResult(0, [], balance.balance, balance.balance)
    params = {**_posting_params(license), **prices.periods()}
    with connection.cursor() as cursor:
        _copy_rows(cursor, _USAGE_TABLE, usage)
        # Each charge is at most its quantity at the largest price, rounded up by less
        # than a micro-dollar; a record makes at most four.
        bound = quantity * prices.largest() + MONEY_QUANT * 4 * len(usage)
        if not totals_can_take(balance, bound):
            # Near the limit (only at $10^12): the exact charges, worked out by the
            # statement's own drafting, checked as any posting's.
            cursor.execute(_USAGE_PREVIEW_SQL, params)
            totals_refuse_overflow(balance, [EntryDraft(*row) for row in cursor.fetchall()])
        balance_after, count, inserted = _post_once(
            cursor, _POST_USAGE_NEW_SQL, _POST_USAGE_SQL, params
        )
        if count:
            # The usage the page posted, consumed from the credit grants (one statement).
            grants_settle(cursor, license=license, balance=balance_after, now=params["now"])
    before, after = _balance_moved(balance, balance_after)
    return UsagePostResult(count, None if inserted is None else list(inserted), before, after)
