"""Credit expiry: at a grant's expiry, what is left of it leaves the balance as one `expiry`
ledger entry, exactly once, posted through the posting engine (so rollups, totals and
closed months hold as for any movement). `credits_expire` is what the beat runs
(billing.tasks.expire_credits) and `manage.py credits_expire` runs by hand; it is
idempotent, and two runs at once expire each grant once.

Exactly once, three ways: each grant is expired in a transaction holding its license's
balance lock, which re-reads the grant and skips it once closed; the entry's external id
is "expiry:<grant id>", unique in the ledger; and the grant keeps it in a one-to-one
`expiry_entry`. Never negative and never more than the remainder: the entry is exactly
the grant's remainder under the lock (grants_follow refuses anything else). A half-used
grant expires only its remainder. When the balance is negative (usage recorded past zero,
invariant 5) every remainder is zero: the grant closes and nothing leaves the balance.

The expiry is dated when the grant was due, so a statement shows it in the month it
expired; a run late past a month's close posts it in the open month like any late entry."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.aftermath import entry_moved, money_log
from billing.credits.grants import expiry_external_id, grant_close
from billing.events.services import grant_data, money_text
from billing.ledger.posting import EntryDraft, lock_balance, post_entry
from billing.models import CreditGrant, LedgerEntry
from billing.money import ZERO, format_money
from portal.exceptions import ApplicationError


def grant_expiry_check(expires_at: datetime | None, *, now: datetime | None = None) -> None:
    """A grant's expiry, when given, is a moment still to come."""
    if expires_at is None:
        return
    if timezone.is_naive(expires_at):
        raise ValueError("a grant's expiry is a moment with its timezone")
    if expires_at <= (now or timezone.now()):
        raise ApplicationError(
            f"Expiry: {expires_at:%Y-%m-%d %H:%M %Z} has already passed; a credit expires "
            "in the future, or never.",
            field="expires",
        )


@dataclass(frozen=True)
class GrantExpired:
    grant_id: int
    amount: Decimal  # what left the balance (0: nothing was left of it)
    entry: LedgerEntry | None


def credit_grant_expire(*, grant_id: int, at: datetime) -> GrantExpired | None:
    """Expire one grant due at `at`: its remainder leaves the balance, once. None when it is
    not due, or was already closed (by an earlier run, or one running beside this one)."""
    with transaction.atomic():
        grant = CreditGrant.objects.select_related("license").get(pk=grant_id)
        license = grant.license
        balance = lock_balance(license)
        grant.refresh_from_db()
        if grant.expired_at is not None or grant.expires_at is None or grant.expires_at > at:
            return None
        now = timezone.now()
        remainder = grant.remaining
        if remainder == 0:
            grant_close(license=license, grant=grant, now=now)
            return GrantExpired(grant.pk, ZERO, None)
        what = grant.get_kind_display().lower()
        draft = EntryDraft(
            kind=LedgerEntry.Kind.EXPIRY,
            amount=-remainder,
            occurred_at=grant.expires_at,
            external_id=expiry_external_id(grant.pk),
            description=(
                f"Expired credit: what was left of {what} of {format_money(grant.amount)} "
                f"(entry #{grant.entry_id})"
            ),
        )
        posted, entry = post_entry(license=license, balance=balance, draft=draft)
        money_log(
            "money expiry",
            license=license.key,
            entry=entry.pk,
            grant=grant.pk,
            amount=-remainder,
            balance=posted.balance_after,
        )
        # credit.expired, in this transaction like every posting's event: written once,
        # as the entry is (a second run finds the grant closed and writes neither).
        # Webhooks, the low-balance alert and auto top-up read the balance it left.
        entry_moved(
            license,
            balance,
            entry,
            credit_id=grant.entry_id,
            granted=money_text(grant.amount),
            **grant_data(kind=grant.kind, expires_at=grant.expires_at),
        )
        return GrantExpired(grant.pk, remainder, entry)


@dataclass
class ExpiryRun:
    at: datetime
    expired: list[GrantExpired] = field(default_factory=list)

    @property
    def amount(self) -> Decimal:
        return sum((e.amount for e in self.expired), ZERO)


def credits_due(*, at: datetime) -> list[int]:
    """The grants due by `at` and not yet closed, soonest first (index credit_grant_due).
    Every license's: a batch job, not a tenant's read."""
    return list(
        CreditGrant.objects.filter(expired_at__isnull=True, expires_at__lte=at)
        .order_by("expires_at", "id")
        .values_list("id", flat=True)
    )


def credits_expire(*, at: datetime | None = None) -> ExpiryRun:
    """Expire every grant due by `at` (now when not given, never later than now), each in
    its own transaction. Idempotent: a grant already closed is skipped."""
    now = timezone.now()
    at = at or now
    if at > now:
        raise ApplicationError("Credits expire when they are due: --at cannot be in the future.")
    run = ExpiryRun(at=at)
    for grant_id in credits_due(at=at):
        expired = credit_grant_expire(grant_id=grant_id, at=at)
        if expired is not None:
            run.expired.append(expired)
    return run
