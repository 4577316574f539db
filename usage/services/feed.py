"""The upstream's feed of licenses with new usage: read from the stored feed cursor, each
license it names marked owed a sync (SyncState.owed_since), and the safety sweep's place.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import License
from portal.logfmt import logfmt
from usage.models import SyncFeed, SyncState
from usage.selectors import FEED
from usage.upstream import UpstreamClient, UpstreamError

logger = logging.getLogger(__name__)


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
