"""What a sync run came to: `SyncResult`, its figures, and `SyncOutcome`, its one reading
(busy, failed, partial, complete), used by Refresh Data, the admin's Sync now, the
command and the tasks."""

from dataclasses import dataclass
from enum import StrEnum


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
