"""Usage pushed by the provider (`POST /ingest/v1/usage`, provider/views.py): a batch of
records, each naming its license, checked exactly as the pull checks them
(usage.services.records.record_parse), grouped by license, and each license's records
charged in ONE transaction through billing's usage posting
(billing.charges.services.usage_record_batch) with its quarantine rows and its push time.

Exactly once across both paths: a record's charges are ledger entries whose (license,
external id) is unique, whichever path brought it first, so a record pushed, pushed again
and later pulled is charged once. A license's records post under its balance lock, so a
push and that license's sync take turns.

Which records are refused: what the pull refuses (docs/upstream-api.md), and a record naming
no license the portal knows (`unknown_license`, kept with no license). A closed or
suspended license's records are recorded like any other (invariant 5: the upstream already
served the call; the gate is what refuses a closed license before a call)."""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import License
from billing.charges.services import UsageRecord, usage_drafts, usage_record_batch
from billing.handoffs import handoffs_deferred
from billing.prices.selectors import PriceBook, price_book_get
from portal.exceptions import ApplicationError
from portal.logfmt import logfmt
from usage.models import QuarantinedRecord, SyncState
from usage.services.quarantine import records_quarantine
from usage.services.records import RecordRejected, record_parse

logger = logging.getLogger(__name__)

# The most records one push may carry: the pull's page size too.
PUSH_MAX_RECORDS = 1000
# The cursor a pushed record is quarantined with (the pull's is its page's cursor).
PUSH_CURSOR = "push"

Reason = QuarantinedRecord.Reason


@dataclass(frozen=True)
class PushRejection:
    index: int  # where the record was in the pushed list (0-based)
    id: str | None  # its id, when it had a string one
    license: str | None  # the license it named, when it named one
    code: str  # QuarantinedRecord.Reason
    reason: str


@dataclass
class PushResult:
    accepted: int = 0  # charged now
    already_known: int = 0  # charged before (by a push or the pull), or repeated in the batch
    rejected: list[PushRejection] = field(default_factory=list)
    received_at: datetime = field(default_factory=timezone.now)


@dataclass
class _LicenseBatch:
    records: list[UsageRecord] = field(default_factory=list)
    refused: list[tuple[object, RecordRejected]] = field(default_factory=list)


def _named_license(raw: Any) -> str | None:
    value = raw.get("license") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def usage_push_record(*, raws: Sequence[Any]) -> PushResult:
    """Charge the pushed records (at most PUSH_MAX_RECORDS), each at most once; refuse and
    quarantine the malformed ones. One transaction per license named; a database error
    raises, with the licenses before it committed (pushing the same batch again is safe:
    what was recorded counts as already known)."""
    if len(raws) > PUSH_MAX_RECORDS:
        raise ApplicationError(f"A push carries at most {PUSH_MAX_RECORDS} records.")
    result = PushResult()
    names = {key for key in map(_named_license, raws) if key is not None}
    licenses = {lic.key: lic for lic in License.objects.filter(key__in=names)} if names else {}
    prices = price_book_get()
    batches: dict[int, _LicenseBatch] = defaultdict(_LicenseBatch)
    homeless: list[tuple[object, RecordRejected]] = []
    for index, raw in enumerate(raws):
        key = _named_license(raw)
        license = licenses.get(key) if key is not None else None
        try:
            if isinstance(raw, dict) and "license" in raw and key is None:
                raise RecordRejected(
                    Reason.UNKNOWN_LICENSE, "license must be a license key (a string)"
                )
            # Checked against the license it names: only its other fields can be wrong here.
            record = record_parse(raw, license_key=key or "", prices=prices, now=result.received_at)
            if license is None:
                raise RecordRejected(
                    Reason.UNKNOWN_LICENSE, f"no license has the key {(key or '')[:80]!r}"
                )
        except RecordRejected as problem:
            record_id = raw.get("id") if isinstance(raw, dict) else None
            result.rejected.append(
                PushRejection(
                    index=index,
                    id=record_id if isinstance(record_id, str) else None,
                    license=key,
                    code=problem.code,
                    reason=problem.reason,
                )
            )
            if license is None:
                homeless.append((raw, problem))
            else:
                batches[license.pk].refused.append((raw, problem))
            continue
        batches[license.pk].records.append(record)
    by_id = {lic.pk: lic for lic in licenses.values()}
    # Hand-overs (the money events' nudge, alerts) once, after the last commit.
    with handoffs_deferred():
        for license_id in sorted(batches):
            charged, known = _license_push_record(
                license=by_id[license_id],
                batch=batches[license_id],
                now=result.received_at,
                prices=prices,
            )
            result.accepted += charged
            result.already_known += known
        if homeless:
            with transaction.atomic():
                records_quarantine(license=None, rejected=homeless, cursor=PUSH_CURSOR)
    return result


def _license_push_record(
    *, license: License, batch: _LicenseBatch, now: datetime, prices: PriceBook
) -> tuple[int, int]:
    """One license's pushed records charged, its refused ones kept, its push time noted:
    one transaction."""
    charged = known = 0
    # Drafted before the transaction, as the sync drafts a page: record_parse checked each
    # record's prices against `prices`, and usage_record_batch drafts again only if the
    # price book has changed since.
    drafts = usage_drafts(batch.records, prices=prices, prices_checked=True)
    with transaction.atomic():
        if batch.records:
            posted = usage_record_batch(license=license, records=drafts)
            charged, known = posted.records_charged, posted.records_duplicate
        if batch.refused:
            records_quarantine(license=license, rejected=batch.refused, cursor=PUSH_CURSOR)
        if batch.records and not SyncState.objects.for_license(license).update(pushed_at=now):
            SyncState.objects.update_or_create(license=license, defaults={"pushed_at": now})
    _log(license=license, batch=batch, charged=charged, known=known)
    return charged, known


def _log(*, license: License, batch: _LicenseBatch, charged: int, known: int) -> None:
    logger.info(
        logfmt(
            "push",
            license=license.key,
            records=len(batch.records) + len(batch.refused),
            charged=charged,
            known=known,
            refused=len(batch.refused),
        )
    )
