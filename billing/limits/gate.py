"""The gate: "may this license spend about $x now?", answered before a call is served.

An allowed estimate is held against the license's available credit (balance − held −
floor, and within its monthly cap: billing.limits.figures) until the usage record carrying
its request id posts — the usage posting releases it in its own transaction
(`gate_holds_release`) — or GATE_HOLD_SECONDS pass. Usage is still always recorded
(invariant 5): the gate decides before a call, the ledger records after it.

One license's authorizations are decided one at a time: each is one short transaction that
locks the license's SpendLimit row, then reads the figures in a statement of its own (so
its snapshot sees every hold committed before the lock was granted), then writes its
answer. So concurrent requests cannot together hold more than is available (invariant 14).
The ledger's postings never take that lock: the gate neither waits for a sync nor makes
one wait.

The same request id asked again gets the same answer and holds nothing more (the answer
is the row, unique per license and request id), until it is pruned GATE_ANSWER_KEEP_SECONDS
after it expired.

When PostgreSQL is slow or down the gate fails closed: the transaction waits at most
GATE_LOCK_TIMEOUT_MS for the license's row and GATE_STATEMENT_TIMEOUT_MS for any
statement, and any database error is the answer `unavailable`, never a hang. It needs no
Redis at all."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import License
from billing.limits.figures import (
    BALANCE_EXHAUSTED,
    MONTHLY_CAP_REACHED,
    CreditFigures,
    credit_figures_read,
)
from billing.limits.models import GateHold, SpendLimit
from billing.money import MONEY_MAX, ZERO, money_exact
from portal.amounts import ForeignDigits, parse_amount
from portal.logfmt import logfmt

logger = logging.getLogger(__name__)

# Reason codes: every refusal names one (docs/product.md, "The gate").
LICENSE_CLOSED = "license_closed"
LICENSE_SUSPENDED = "license_suspended"
UNKNOWN_LICENSE = "unknown_license"
BAD_ESTIMATE = "bad_estimate"
BAD_REQUEST_ID = "bad_request_id"
BAD_REQUEST = "bad_request"
UNAVAILABLE = "unavailable"
REASONS = {
    BALANCE_EXHAUSTED: "The estimate is more than the credit available above the license's floor.",
    MONTHLY_CAP_REACHED: "The estimate would take this month's usage past the monthly cap.",
    LICENSE_SUSPENDED: "The license is suspended.",
    LICENSE_CLOSED: "The license is closed.",
    UNKNOWN_LICENSE: "No license has this key.",
    BAD_ESTIMATE: "The estimate is not an amount above zero (a string of digits, at most 6 places).",
    BAD_REQUEST_ID: "The request id is missing, longer than 100 characters or not printable.",
    BAD_REQUEST: "The body is not a JSON object with the license, the estimate and the request id.",
    UNAVAILABLE: "The portal could not decide in time; ask again shortly.",
}
MAX_REQUEST_ID_LENGTH = 100  # what a ledger entry's request_id holds


class GateRefusal(ValueError):
    """A request the gate cannot decide on: its reason code and words."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or REASONS[reason])
        self.reason = reason
        self.message = message or REASONS[reason]


@dataclass(frozen=True)
class GateAnswer:
    allow: bool
    reason: str | None  # None when allowed; otherwise one of REASONS
    available: Decimal  # what one more authorization could take now, after this one
    as_of: datetime  # when the figures were read
    expires_at: datetime | None = None  # an allowed hold ends then, unless its usage posts
    repeated: bool = False  # the answer given before to the same request id

    @property
    def message(self) -> str:
        return REASONS[self.reason] if self.reason else ""


def estimate_parse(value: object) -> Decimal:
    """An estimate as the gate takes it: a string of ASCII digits, at most 6 decimal places,
    above zero (portal.amounts' one rule of digits; a JSON number is refused: no float
    touches money). GateRefusal(bad_estimate) otherwise."""
    if not isinstance(value, str):
        raise GateRefusal(BAD_ESTIMATE, 'Send the estimate as a string, e.g. "0.010000".')
    try:
        amount = money_exact(parse_amount(value, places=6, max_value=MONEY_MAX))
    except (ForeignDigits, ValueError) as exc:
        raise GateRefusal(BAD_ESTIMATE, f"The estimate: {exc}.") from None
    if amount <= 0:
        raise GateRefusal(BAD_ESTIMATE, "The estimate must be more than 0.")
    return amount


def request_id_check(value: object) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_REQUEST_ID_LENGTH
        or not value.isprintable()
    ):
        raise GateRefusal(BAD_REQUEST_ID)
    return value


_LOCK_SQL = """
SELECT l.id, l.status, l.timezone, s.floor_level, s.cap_level
FROM billing_spendlimit AS s JOIN accounts_license AS l ON l.id = s.license_id
WHERE l.key = %s
FOR UPDATE OF s
"""


def _license_lock(license_key: str) -> tuple[int, str, str, int, int] | None:
    """Lock the license's spend-limit row (made on its first authorization); None when no
    license has the key."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, [license_key])
        row = cursor.fetchone()
        if row is None:
            license_id = (
                License.objects.filter(key=license_key).values_list("pk", flat=True).first()
            )
            if license_id is None:
                return None
            SpendLimit.objects.bulk_create(
                [SpendLimit(license_id=license_id)], ignore_conflicts=True
            )
            cursor.execute(_LOCK_SQL, [license_key])
            row = cursor.fetchone()
    return row


def _timeouts_set() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
            [f"{settings.GATE_LOCK_TIMEOUT_MS}ms", f"{settings.GATE_STATEMENT_TIMEOUT_MS}ms"],
        )


def gate_authorize(*, license_key: str, estimate: Decimal, request_id: str) -> GateAnswer:
    """May the license spend `estimate` now, for the call `request_id`? Allowed: the
    estimate is held. Never raises for the database: `unavailable` instead."""
    try:
        with transaction.atomic():
            _timeouts_set()
            locked = _license_lock(license_key)
            now = timezone.now()
            if locked is None:
                return GateAnswer(False, UNKNOWN_LICENSE, ZERO, now)
            license_id, status, tz, *_levels = locked
            month = License(timezone=tz).local_month(now)
            figures = credit_figures_read(
                license_id=license_id, now=now, month=month, request_id=request_id
            )
            if figures.answered is not None:
                given = figures.answered
                return GateAnswer(
                    allow=given.allowed,
                    reason=given.reason or None,
                    available=given.available,
                    as_of=given.decided_at,
                    expires_at=given.expires_at if given.allowed else None,
                    repeated=True,
                )
            return _decide(
                license_id=license_id,
                status=status,
                figures=figures,
                estimate=estimate,
                request_id=request_id,
            )
    except DatabaseError as exc:
        # Timed out waiting (lock_timeout, statement_timeout), or the database is gone:
        # closed, at once. The transaction is rolled back; nothing was held.
        logger.warning(logfmt("gate unavailable", license=license_key, error=str(exc)[:200]))
        return GateAnswer(False, UNAVAILABLE, ZERO, timezone.now())


def _decide(
    *, license_id: int, status: str, figures: CreditFigures, estimate: Decimal, request_id: str
) -> GateAnswer:
    now = figures.as_of
    if status == License.Status.CLOSED:
        reason: str | None = LICENSE_CLOSED
    elif status == License.Status.SUSPENDED:
        reason = LICENSE_SUSPENDED
    else:
        reason = figures.refusal(estimate)
    allowed = reason is None
    after = figures.holding(estimate) if allowed else figures
    expires_at = now + timedelta(seconds=settings.GATE_HOLD_SECONDS)
    GateHold.objects.create(
        license_id=license_id,
        request_id=request_id,
        estimate=estimate,
        allowed=allowed,
        reason=reason or "",
        available=after.available,
        decided_at=now,
        expires_at=expires_at,
    )
    return GateAnswer(
        allow=allowed,
        reason=reason,
        available=after.available,
        as_of=now,
        expires_at=expires_at if allowed else None,
    )


def gate_holds_release(*, license: License, request_ids: list[str], at: datetime) -> int:
    """The usage records carrying these request ids have posted: their holds end (inside
    the posting's transaction). Returns how many holds were released."""
    wanted = sorted({r for r in request_ids if r})
    if not wanted:
        return 0
    return (
        GateHold.objects.for_license(license)
        .filter(request_id__in=wanted, allowed=True, released_at__isnull=True)
        .update(released_at=at)
    )


def gate_holds_prune(*, now: datetime | None = None) -> int:
    """Forget answers GATE_ANSWER_KEEP_SECONDS after they expired (their request id may be
    answered afresh from then on). Returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.GATE_ANSWER_KEEP_SECONDS)
    deleted, _ = GateHold.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
