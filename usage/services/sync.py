"""The sync of a license: its usage records pulled from its stored cursor and charged.

The sync pulls a license's usage records from its stored cursor, page by page. Each page
is recorded in ONE transaction: the ledger charges (billing.charges.services.usage_record_batch,
which skips record ids already charged), the quarantined records and the advanced
cursor. A crash between pages therefore loses nothing and charges nothing twice: the next
run starts from the last committed cursor, and a page fetched again is charged once.
"""

import logging
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from billing.charges.services import UsageDrafts, usage_drafts, usage_record_batch
from billing.handoffs import handoffs_deferred
from billing.ledger.statistics import BACKFILL_RECORDS, ledger_statistics_refresh
from billing.prices.selectors import PriceBook, price_book_get
from portal.breaker import breaker_wait
from portal.locks import advisory_lock
from portal.logfmt import logfmt
from usage.models import SyncState
from usage.services.quarantine import records_quarantine
from usage.services.records import RecordRejected, records_parse
from usage.services.results import SyncResult
from usage.upstream import BREAKER as UPSTREAM_BREAKER
from usage.upstream import (
    UpstreamClient,
    UpstreamError,
    UpstreamOutOfTime,
    UsagePage,
    upstream_down_message,
)

logger = logging.getLogger(__name__)


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
        # Serialized by the sync's lock, so the counts are exact.
        quarantined, repeated = records_quarantine(license=license, rejected=rejected, cursor=after)
        duplicate += repeated
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
        handoffs_deferred(),
        advisory_lock(f"usage_sync:{license.pk}") as acquired,
    ):
        if not acquired:
            logger.info("sync license=%s trigger=%s: another sync is running", license.key, trigger)
            return SyncResult(ran=False)
        result = _sync_locked(
            license=license,
            trigger=trigger,
            deadline=deadline,
            max_pages=max_pages,
            on_page=on_page,
        )
    # A backfill changes the ledger's statistics at once; analyzed after the lock is let go.
    if result.records_charged >= BACKFILL_RECORDS:
        ledger_statistics_refresh()
    return result


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
