"""The gate: "may this license spend about $x now?", answered before a call is served.

An allowed estimate is held against the license's available credit (balance − held −
floor, and within its monthly cap: billing.limits.figures) until the usage record carrying
its request id posts — the usage posting releases it in its own transaction
(billing.limits.holds.gate_holds_release) — or GATE_HOLD_SECONDS pass. Usage is still
always recorded (invariant 5): the gate decides before a call, the ledger records after.

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
from billing.events.crossing import Crossing, Line, crossing_step
from billing.events.services import money_event_record, money_text, time_text
from billing.events.types import LIMIT_REACHED
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
            license_id, status, tz, floor_level, cap_level = locked
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
            answer = _decide(
                license_id=license_id,
                status=status,
                figures=figures,
                estimate=estimate,
                request_id=request_id,
            )
            if status == License.Status.ACTIVE:
                _limits_crossing(
                    license=License(pk=license_id, key=license_key),
                    levels=(floor_level, cap_level),
                    figures=figures,
                    estimate=estimate,
                    request_id=request_id,
                )
            return answer
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


# The one line of each limit (billing.events.crossing): the room left after this estimate
# under zero is a refusal for that limit. Crossing it is news once; an authorization that
# passes it again re-arms it.
_LIMIT_LINES = (Line(ZERO),)


def _limits_crossing(
    *,
    license: License,
    levels: tuple[int, int],
    figures: CreditFigures,
    estimate: Decimal,
    request_id: str,
) -> None:
    """Announce each limit this authorization found newly reached (a `limit.reached` money
    event, for the webhooks and the owners' email), and keep the levels, in the gate's
    transaction with the row locked: once per crossing however many calls are refused."""
    floor = crossing_step(
        level=levels[0], balance=figures.credit_room - estimate, lines=_LIMIT_LINES
    )
    cap_room = figures.cap_room
    cap = (
        crossing_step(level=levels[1], balance=cap_room - estimate, lines=_LIMIT_LINES)
        if cap_room is not None
        else Crossing(level=0)
    )
    if (floor.level, cap.level) != levels:
        SpendLimit.objects.filter(license=license).update(
            floor_level=floor.level, cap_level=cap.level
        )
    for limit, crossing, reason in (
        ("floor", floor, BALANCE_EXHAUSTED),
        ("monthly_cap", cap, MONTHLY_CAP_REACHED),
    ):
        if crossing.crossed is None:
            continue
        # No nudge: the gate never waits on the broker (Redis); the events' sweep (every
        # 30 s) and the next posting's nudge hand it to the consumers.
        money_event_record(
            license=license,
            event_type=LIMIT_REACHED,
            data={
                "limit": limit,
                "reason": reason,
                "request_id": request_id,
                "estimate": money_text(estimate),
                "available": money_text(figures.available),
                "balance": money_text(figures.balance),
                "held": money_text(figures.held),
                "floor": money_text(figures.floor),
                "monthly_cap": None
                if figures.monthly_cap is None
                else money_text(figures.monthly_cap),
                "month_used": money_text(figures.month_used),
                "reached_at": time_text(figures.as_of),
            },
            nudge=False,
        )
