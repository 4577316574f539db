"""Records refused, kept raw with the reason (QuarantinedRecord): the pull's pages and the
provider's pushes keep them the same way, each record once (by the SHA-256 of its
canonical JSON), inside the caller's transaction."""

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from accounts.models import License
from usage.models import QuarantinedRecord
from usage.services.records import RecordRejected


def _storable(value: Any) -> Any:
    """The raw record as PostgreSQL's jsonb accepts it: NUL characters spelled out."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value


def _fingerprint(raw: Any) -> str:
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def records_quarantine(
    *,
    license: License | None,
    rejected: Sequence[tuple[object, RecordRejected]],
    cursor: str,
) -> tuple[int, int]:
    """Keep each refused record once, under `license` (None: a pushed record naming no
    license the portal knows). Returns (kept now, already kept: repeated in `rejected` or
    kept before). Inside the caller's transaction."""
    duplicate = 0
    drafts: dict[str, QuarantinedRecord] = {}
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
            cursor=cursor,
        )
    if not drafts:
        return 0, duplicate
    known = set(
        QuarantinedRecord.objects.for_license(license)
        .filter(fingerprint__in=drafts)
        .values_list("fingerprint", flat=True)
    )
    # A concurrent writer of the same record (a push beside the license's sync) meets the
    # unique constraints and keeps the one row.
    QuarantinedRecord.objects.bulk_create(
        [d for f, d in drafts.items() if f not in known], ignore_conflicts=True
    )
    return len(drafts) - len(known), duplicate + len(known)
