"""Writes of the usage app: the upstream sync and the manual-refresh claim.

The sync pulls a license's usage records from its stored cursor, page by page. Each page
is recorded in ONE transaction: the ledger charges (billing.charges.services.usage_record_batch,
which skips record ids already charged), the quarantined records and the advanced
cursor. A crash between pages therefore loses nothing and charges nothing twice: the next
run starts from the last committed cursor, and a page fetched again is charged once.
"""

import hashlib
import json
import logging
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from billing.charges.services import UsageDrafts, UsageRecord, usage_drafts, usage_record_batch
from billing.models import Service
from billing.prices.selectors import PriceBook, price_book_get
from billing.tasks import balance_alert_handoffs_deferred
from portal.breaker import breaker_wait
from portal.exceptions import ApplicationError
from portal.locks import advisory_lock
from portal.logfmt import logfmt
from usage.models import QuarantinedRecord, SyncFeed, SyncState
from usage.selectors import FEED
from usage.upstream import (
    BREAKER as UPSTREAM_BREAKER,
)
from usage.upstream import (
    UpstreamClient,
    UpstreamError,
    UpstreamOutOfTime,
    UsagePage,
    upstream_down_message,
)

logger = logging.getLogger(__name__)

Reason = QuarantinedRecord.Reason

QUANTITY_FIELDS = ("input_tokens", "cached_tokens", "completion_tokens", "images")
REQUIRED_FIELDS = ("id", "license", "occurred_at", "status", *QUANTITY_FIELDS)
# The ledger's external id is "<record id>:<service>" in 200 characters.
MAX_RECORD_ID_LENGTH = 160
MAX_TEXT_LENGTH = 200
MAX_QUANTITY = 10**12
# Upstream clocks may run a little ahead of ours; a record further in the future is wrong.
MAX_CLOCK_SKEW = timedelta(hours=1)
# Which price each count is charged at (billing.charges.services turns them into charges).
QUANTITY_SERVICES = {
    "input_tokens": Service.AI_DATA,
    "cached_tokens": Service.AI_DATA_CACHED,
    "completion_tokens": Service.AI_DATA_COMPLETION,
    "images": Service.AI_IMAGES,
}


class SyncOutcome(StrEnum):
    """What a sync run came to: the one reading of a SyncResult."""

    BUSY = "busy"  # another sync of this license held its lock; this one did nothing
    FAILED = "failed"  # the upstream failed; the pages before the failure stay recorded
    PARTIAL = "partial"  # stopped (time budget, page limit) with more to fetch
    COMPLETE = "complete"  # reached the end of what the upstream had


@dataclass
class SyncResult:
    ran: bool = True  # False: another sync of this license held the lock
    pages: int = 0
    records_received: int = 0
    records_charged: int = 0
    records_duplicate: int = 0
    records_quarantined: int = 0
    error: str = ""
    complete: bool = False  # False: stopped (time budget, page limit, error) with more to fetch
    # A PARTIAL run synced in a request: True once a worker has the rest, False when the
    # broker refused it (usage.tasks.usage_sync_in_request). None otherwise.
    continued: bool | None = None

    @property
    def outcome(self) -> SyncOutcome:
        if not self.ran:
            return SyncOutcome.BUSY
        if self.error:
            return SyncOutcome.FAILED
        if not self.complete:
            return SyncOutcome.PARTIAL
        return SyncOutcome.COMPLETE

    def summary(self) -> str:
        """ "3 pages, 120 charged, 2 duplicates skipped, 0 quarantined" """
        return (
            f"{self.pages} page{'' if self.pages == 1 else 's'}, "
            f"{self.records_charged} charged, "
            f"{self.records_duplicate} duplicates skipped, "
            f"{self.records_quarantined} quarantined"
        )


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


def _storable(value: Any) -> Any:
    """The raw record as PostgreSQL's jsonb accepts it: NUL characters spelled out."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value


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
    for name, service in QUANTITY_SERVICES.items():
        if quantities[name]:
            try:
                prices.unit_price(service, occurred_at)
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


def _fingerprint(raw: Any) -> str:
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class _PageOutcome:
    charged: int
    duplicate: int
    quarantined: int


def _page_record(
    *,
    license: License,
    after: str,
    next_cursor: str,
    drafted: UsageDrafts,
    rejected: list[tuple[object, RecordRejected]],
) -> _PageOutcome:
    """Charges, quarantine rows and the new cursor, all in one transaction."""
    with transaction.atomic():
        charged = duplicate = 0
        if drafted.records:
            batch = usage_record_batch(license=license, records=drafted)
            charged, duplicate = batch.records_charged, batch.records_duplicate
        drafts: dict[str, QuarantinedRecord] = {}
        known: set[str] = set()
        for raw, problem in rejected:
            fingerprint = _fingerprint(raw)
            if fingerprint in drafts:
                duplicate += 1
                continue
            stored = _storable(raw)
            record_id = stored.get("id") if isinstance(stored, dict) else None
            drafts[fingerprint] = QuarantinedRecord(
                license=license,
                record_id=str(record_id)[:200] if record_id is not None else "",
                raw=stored,
                fingerprint=fingerprint,
                reason_code=problem.code,
                reason=problem.reason,
                cursor=after,
            )
        if drafts:
            # Serialized by the sync's lock, so this read and the insert see the same rows.
            known = set(
                QuarantinedRecord.objects.for_license(license)
                .filter(fingerprint__in=drafts)
                .values_list("fingerprint", flat=True)
            )
            duplicate += len(known)
            QuarantinedRecord.objects.bulk_create(
                [d for f, d in drafts.items() if f not in known], ignore_conflicts=True
            )
        quarantined = len(drafts) - len(known)
        SyncState.objects.for_license(license).update(
            cursor=next_cursor,
            records_charged=F("records_charged") + charged,
            records_duplicate=F("records_duplicate") + duplicate,
            records_quarantined=F("records_quarantined") + quarantined,
        )
    return _PageOutcome(charged, duplicate, quarantined)


def usage_sync_license(
    *,
    license: License,
    trigger: str = "beat",
    time_budget_seconds: float | None = None,
    max_pages: int | None = None,
    on_page: Callable[[SyncResult], None] | None = None,
    fail_fast: bool = False,
) -> SyncResult:
    """Bring a license's usage up to date with the upstream, from its stored cursor.

    At most one sync per license runs at a time: if another holds the license's lock this
    returns at once with `ran=False`. Upstream failures end the run with `error` set (the
    pages already recorded stay); the next run resumes from the last committed cursor.
    `time_budget_seconds` and `max_pages` stop the run early with `complete=False`.
    """
    if fail_fast:
        # A customer's click while the upstream is known down: answered at once, before the
        # time budget starts, without asking the upstream (usage/upstream.py, breaker).
        wait = breaker_wait(UPSTREAM_BREAKER)
        if wait:
            logger.info("sync license=%s trigger=%s: upstream known down", license.key, trigger)
            return SyncResult(error=upstream_down_message(wait))
    deadline = None if time_budget_seconds is None else time.monotonic() + time_budget_seconds
    SyncState.objects.get_or_create(license=license)
    # Alerts owed by the pages are handed to the broker (a network call) only once the
    # lock is released, so a hanging broker never keeps the license's sync "running".
    with (
        balance_alert_handoffs_deferred(),
        advisory_lock(f"usage_sync:{license.pk}") as acquired,
    ):
        if not acquired:
            logger.info("sync license=%s trigger=%s: another sync is running", license.key, trigger)
            return SyncResult(ran=False)
        return _sync_locked(
            license=license,
            trigger=trigger,
            deadline=deadline,
            max_pages=max_pages,
            on_page=on_page,
        )


def _sync_locked(
    *,
    license: License,
    trigger: str,
    deadline: float | None,
    max_pages: int | None,
    on_page: Callable[[SyncResult], None] | None,
) -> SyncResult:
    started = time.monotonic()
    # Taken before the first page is asked: a feed mark older than this is answered by
    # this run if it completes (usage_feed_read).
    attempt_at = timezone.now()
    SyncState.objects.for_license(license).update(last_attempt_at=attempt_at)
    cursor = SyncState.objects.for_license(license).values_list("cursor", flat=True).get()
    prices = price_book_get()
    result = SyncResult()

    try:
        if (max_pages is None or max_pages > 0) and (
            deadline is None or time.monotonic() < deadline
        ):
            _pages_record(
                license=license,
                cursor=cursor,
                prices=prices,
                deadline=deadline,
                max_pages=max_pages,
                on_page=on_page,
                result=result,
            )
    except UpstreamOutOfTime as exc:
        if result.pages == 0:
            return _sync_failed(
                license=license,
                trigger=trigger,
                result=result,
                message=exc.message,
                started=started,
            )
        # Pages were recorded: the run is just not finished (complete stays False).
        logger.info("sync license=%s trigger=%s out of time: %s", license.key, trigger, exc.message)
    except UpstreamError as exc:
        return _sync_failed(
            license=license, trigger=trigger, result=result, message=exc.message, started=started
        )
    except Exception as exc:
        # Recorded so staff see it on the sync state, then raised for the task's retry.
        logger.exception(
            logfmt(
                "sync crashed",
                license=license.key,
                trigger=trigger,
                pages=result.pages,
                records=result.records_received,
                charged=result.records_charged,
                skipped=result.records_duplicate,
                quarantined=result.records_quarantined,
                duration_s=time.monotonic() - started,
                error=type(exc).__name__,
            )
        )
        try:
            SyncState.objects.for_license(license).update(
                last_error=f"Internal error: {type(exc).__name__}",
                last_error_at=timezone.now(),
                consecutive_failures=F("consecutive_failures") + 1,
            )
        except DatabaseError:
            logger.warning("sync license=%s: could not record the crash", license.key)
        raise
    if result.complete:
        SyncState.objects.for_license(license).update(
            last_success_at=timezone.now(),
            last_error="",
            consecutive_failures=0,
            owed_since=Case(
                When(owed_since__lte=attempt_at, then=Value(None)), default=F("owed_since")
            ),
        )
    _sync_logged(license=license, trigger=trigger, result=result, started=started)
    return result


def _pages_record(
    *,
    license: License,
    cursor: str,
    prices: PriceBook,
    deadline: float | None,
    max_pages: int | None,
    on_page: Callable[[SyncResult], None] | None,
    result: SyncResult,
) -> None:
    """Fetch and record pages from `cursor` on until the upstream has no more or the run's
    limits are reached, adding to `result` page by page (each page committed on its own)."""

    def prepared(page: UsagePage) -> tuple[UsageDrafts, list[tuple[object, RecordRejected]]]:
        # Runs in the client's fetching thread, while the page before is being recorded:
        # the page's records checked and drafted into charges, without the database.
        records, rejected = records_parse(page.records, license_key=license.key, prices=prices)
        return usage_drafts(records, prices=prices, prices_checked=True), rejected

    with UpstreamClient() as client:
        pages = client.usage_pages(
            license_key=license.key,
            after=cursor,
            limit=settings.UPSTREAM_PAGE_SIZE,
            prepare=prepared,
            deadline=deadline,
            max_pages=max_pages,
        )
        with closing(pages):
            for page, (drafted, rejected) in pages:
                if page.has_more and not page.records and page.next_cursor == cursor:
                    raise UpstreamError("Upstream said there is more but sent nothing new.")
                if page.records or page.next_cursor != cursor:
                    outcome = _page_record(
                        license=license,
                        after=cursor,
                        next_cursor=page.next_cursor,
                        drafted=drafted,
                        rejected=rejected,
                    )
                    result.records_charged += outcome.charged
                    result.records_duplicate += outcome.duplicate
                    result.records_quarantined += outcome.quarantined
                cursor = page.next_cursor
                result.pages += 1
                result.records_received += len(page.records)
                if on_page is not None:
                    on_page(result)
                if not page.has_more:
                    result.complete = True
                    return
                if max_pages is not None and result.pages >= max_pages:
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    return


def _sync_failed(
    *, license: License, trigger: str, result: SyncResult, message: str, started: float
) -> SyncResult:
    result.error = message
    SyncState.objects.for_license(license).update(
        last_error=message,
        last_error_at=timezone.now(),
        consecutive_failures=F("consecutive_failures") + 1,
    )
    _sync_logged(license=license, trigger=trigger, result=result, started=started)
    return result


def _sync_logged(*, license: License, trigger: str, result: SyncResult, started: float) -> None:
    """One line per sync run with every figure staff ask about (portal/logfmt.py)."""
    fields = {
        "license": license.key,
        "trigger": trigger,
        "pages": result.pages,
        "records": result.records_received,
        "charged": result.records_charged,
        "skipped": result.records_duplicate,
        "quarantined": result.records_quarantined,
        "complete": result.complete,
        "duration_s": time.monotonic() - started,
    }
    if result.error:
        logger.warning(logfmt("sync failed", **fields, error=result.error))
    else:
        logger.info(logfmt("sync", **fields))


def usage_refresh_claim(*, license: License) -> bool:
    """Claim the manual refresh of a license: True at most once per refresh interval.

    One conditional UPDATE decides, so two clicks at the same instant get one True, and it
    needs only the database (a Redis outage does not open the gate).
    """
    SyncState.objects.get_or_create(license=license)
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.USAGE_REFRESH_INTERVAL_SECONDS)
    claimed = (
        SyncState.objects.for_license(license)
        .filter(Q(last_manual_refresh_at__isnull=True) | Q(last_manual_refresh_at__lte=cutoff))
        .update(last_manual_refresh_at=now)
    )
    return claimed == 1


def usage_sync_now(
    *, acting_user: User, license: License, time_budget_seconds: float
) -> SyncResult:
    """A staff member starts a sync (admin "Sync now"): audited, then run."""
    with transaction.atomic():
        audit_record(
            actor=acting_user,
            license=license,
            action="usage.sync_now",
            target=f"license {license.key}",
        )
    return usage_sync_license(
        license=license, trigger="admin", time_budget_seconds=time_budget_seconds
    )


@dataclass
class FeedRead:
    """What one read of the upstream's feed came to (usage_feed_read)."""

    pages: int = 0
    licenses_named: int = 0  # licenses of ours the feed named (marked owed a sync)
    unknown: int = 0  # keys the feed named that are no license of ours (or a closed one)
    complete: bool = False  # reached the end of the feed
    error: str = ""


def _licenses_mark_owed(*, keys: list[str], now: datetime) -> int:
    """Mark the licenses with these keys owed a sync (an earlier mark stands). Suspended
    licenses are marked too, so a license reactivated later is synced at the next beat."""
    ids = list(
        License.objects.filter(key__in=keys)
        .exclude(status=License.Status.CLOSED)
        .values_list("pk", flat=True)
    )
    SyncState.objects.bulk_create([SyncState(license_id=pk) for pk in ids], ignore_conflicts=True)
    SyncState.objects.filter(license_id__in=ids, owed_since__isnull=True).update(owed_since=now)
    return len(ids)


def usage_feed_read(*, max_pages: int | None = None, page_size: int | None = None) -> FeedRead:
    """Ask the upstream's feed which licenses have new usage since the stored feed cursor,
    and mark them owed a sync.

    Each page's marks and the advanced cursor commit in one transaction, so a failure
    anywhere loses nothing: the next read starts from the last committed cursor, and a
    license named twice is owed once. A mark is taken after its page has arrived, so the
    sync that clears it (one that started after the mark and completed) has seen the
    records the feed was speaking of.
    """
    max_pages = max_pages or settings.USAGE_FEED_MAX_PAGES
    page_size = page_size or settings.USAGE_FEED_PAGE_SIZE
    started = time.monotonic()
    feed, _ = SyncFeed.objects.get_or_create(name=FEED)
    cursor = feed.cursor
    result = FeedRead()
    try:
        with UpstreamClient() as client:
            while result.pages < max_pages:
                asked_at = timezone.now()
                page = client.usage_changes(after=cursor, limit=page_size)
                if page.has_more and page.next_cursor == cursor:
                    raise UpstreamError("Upstream's feed said there is more but sent nothing new.")
                with transaction.atomic():
                    named = _licenses_mark_owed(keys=page.license_keys, now=timezone.now())
                    updates: dict[str, Any] = {"cursor": page.next_cursor, "last_error": ""}
                    if not page.has_more:
                        updates["confirmed_at"] = asked_at
                    SyncFeed.objects.filter(name=FEED).update(**updates)
                result.pages += 1
                result.licenses_named += named
                result.unknown += len(set(page.license_keys)) - named
                cursor = page.next_cursor
                if not page.has_more:
                    result.complete = True
                    break
    except UpstreamError as exc:
        result.error = exc.message
        SyncFeed.objects.filter(name=FEED).update(
            last_error=exc.message, last_error_at=timezone.now()
        )
    fields = {
        "pages": result.pages,
        "named": result.licenses_named,
        "unknown": result.unknown,
        "complete": result.complete,
        "duration_s": time.monotonic() - started,
    }
    if result.error:
        logger.warning(logfmt("sync feed failed", **fields, error=result.error))
    else:
        logger.info(logfmt("sync feed", **fields))
    return result


def usage_sweep_advance(*, after_id: int) -> None:
    """Move the safety sweep on, once its chunk has been handed to the workers."""
    SyncFeed.objects.filter(name=FEED).update(sweep_after_id=after_id)
