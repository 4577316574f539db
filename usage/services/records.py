"""A raw upstream record checked: parsed into a billing UsageRecord, or refused with the
reason it is quarantined for (QuarantinedRecord.Reason). No database: the sync runs this
in the upstream client's fetching thread (usage.services.sync)."""

import json
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from billing.charges.services import UsageRecord
from billing.ledger.usage import USAGE_COUNTS, USAGE_PARTS
from billing.prices.selectors import PriceBook
from portal.exceptions import ApplicationError
from usage.models import QuarantinedRecord

Reason = QuarantinedRecord.Reason

QUANTITY_FIELDS = USAGE_COUNTS
REQUIRED_FIELDS = ("id", "license", "occurred_at", "status", *QUANTITY_FIELDS)
# The ledger's external id is "<record id>:<service>" in 200 characters.
MAX_RECORD_ID_LENGTH = 160
MAX_TEXT_LENGTH = 200
MAX_QUANTITY = 10**12
# Upstream clocks may run a little ahead of ours; a record further in the future is wrong.
MAX_CLOCK_SKEW = timedelta(hours=1)


class RecordRejected(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "…"


def _is_plain(text: str, *, spaces: bool = True) -> bool:
    # PostgreSQL text cannot hold NUL, and control characters in an id are a sign of garbage.
    # The only white space a printable string can hold is " " (every other kind is a
    # control character or a separator, which isprintable refuses).
    return text.isprintable() and (spaces or " " not in text)


def record_parse(raw: Any, *, license_key: str, prices: PriceBook, now: datetime) -> UsageRecord:
    """Turn one raw upstream record into a UsageRecord, or raise RecordRejected saying why."""
    if not isinstance(raw, dict):
        raise RecordRejected(Reason.NOT_AN_OBJECT, f"the record is not an object: {_shown(raw)}")
    missing = [name for name in REQUIRED_FIELDS if name not in raw]
    if missing:
        raise RecordRejected(Reason.MISSING_FIELD, f"missing field(s): {', '.join(missing)}")
    record_id = raw["id"]
    if not isinstance(record_id, str) or not record_id or not _is_plain(record_id, spaces=False):
        raise RecordRejected(
            Reason.BAD_ID, f"id must be a string of visible characters, not {_shown(record_id)}"
        )
    if len(record_id) > MAX_RECORD_ID_LENGTH:
        raise RecordRejected(
            Reason.BAD_ID,
            f"id is {len(record_id)} characters long; at most {MAX_RECORD_ID_LENGTH} are allowed",
        )
    if raw["license"] != license_key:
        raise RecordRejected(
            Reason.UNKNOWN_LICENSE,
            f"the record is for license {_shown(raw['license'])}, not {license_key}",
        )
    occurred_text = raw["occurred_at"]
    try:
        if not isinstance(occurred_text, str):
            raise ValueError
        occurred_at = datetime.fromisoformat(occurred_text)
    except ValueError:
        raise RecordRejected(
            Reason.BAD_DATE, f"occurred_at is not an RFC 3339 date-time: {_shown(occurred_text)}"
        ) from None
    if occurred_at.tzinfo is None:
        raise RecordRejected(Reason.BAD_DATE, f"occurred_at has no time zone: {occurred_text}")
    if occurred_at > now + MAX_CLOCK_SKEW:
        raise RecordRejected(Reason.BAD_DATE, f"occurred_at is in the future: {occurred_text}")
    if raw["status"] not in ("success", "error"):
        raise RecordRejected(
            Reason.BAD_STATUS, f"status must be success or error, not {_shown(raw['status'])}"
        )
    quantities = {}
    for name in QUANTITY_FIELDS:
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordRejected(
                Reason.BAD_QUANTITY, f"{name} is not a whole number: {_shown(value)}"
            )
        if value < 0:
            raise RecordRejected(Reason.BAD_QUANTITY, f"{name} is negative: {value}")
        if value > MAX_QUANTITY:
            raise RecordRejected(Reason.BAD_QUANTITY, f"{name} is implausibly large: {value}")
        quantities[name] = value
    texts = {}
    for name in ("request_id", "endpoint"):
        value = raw.get(name)
        if value is None:
            value = ""
        if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH or not _is_plain(value):
            raise RecordRejected(
                Reason.BAD_TEXT,
                f"{name} must be a string of at most {MAX_TEXT_LENGTH} printable characters",
            )
        texts[name] = value
    for part in USAGE_PARTS:  # each count used must have a price in effect then
        if quantities[part.count]:
            try:
                prices.unit_price(part.service, occurred_at)
            except ApplicationError as exc:
                raise RecordRejected(Reason.NO_PRICE, exc.message) from None
    return UsageRecord(
        id=record_id,
        occurred_at=occurred_at,
        status=raw["status"],
        input_tokens=quantities["input_tokens"],
        cached_tokens=quantities["cached_tokens"],
        completion_tokens=quantities["completion_tokens"],
        images=quantities["images"],
        request_id=texts["request_id"],
        endpoint=texts["endpoint"],
    )


def records_parse(
    raws: list, *, license_key: str, prices: PriceBook
) -> tuple[list[UsageRecord], list[tuple[object, RecordRejected]]]:
    """A page's raw records parsed: the good ones, and each bad one with why it was refused."""
    now = timezone.now()
    records: list[UsageRecord] = []
    rejected: list[tuple[object, RecordRejected]] = []
    for raw in raws:
        try:
            records.append(record_parse(raw, license_key=license_key, prices=prices, now=now))
        except RecordRejected as problem:
            rejected.append((raw, problem))
    return records, rejected
