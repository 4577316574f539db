"""Consumers of money events: the apps above billing say what they do with them
(`money_event_consumer_register`, from their AppConfig.ready, so billing never imports
them), and `money_event_consumers_run` runs each in its own transactions after the events
commit (billing.events.tasks: a nudge after each commit, and a beat sweep).

Exactly once. Each consumer has a cursor row (MoneyEventCursor). A run locks it
(`FOR UPDATE SKIP LOCKED`: a second run at the same moment finds it taken and leaves, so
two runs never both handle an event), reads the events after it, lets the consumer handle
each, and moves the cursor in that same transaction. The consumer's writes (webhook events
and deliveries, a top-up's payment) and the cursor commit together or not at all: a run
killed between its claim and its commit leaves nothing, and the next run does it again.
What a consumer does outside the database (Stripe, an HTTP delivery, an email) it hands to
a task after that commit, as everywhere else.

Why not the id alone. Ids come from a sequence when a row is inserted, but transactions
commit in any order: event 8 may commit while event 7's transaction is still open, and a
cursor moved to 8 would never see 7. So each event stores its writing transaction's id
(`xact_id`), and a run reads only events whose transaction id is below a horizon: no
transaction below it can still be running. Every transaction that could still add an event
then sorts after the cursor, whose position is (xact_id, id). The horizon is the oldest
transaction still running in this database as the run's snapshot sees it (or the snapshot's
xmax when none is): transactions of other databases on the same server never write here, so
they are left out (pg_stat_activity names their database) rather than holding every
consumer back. An event waiting on an older transaction (`waiting`) is read once that one
ends: by the nudge of its commit when it wrote events, otherwise by a retry of the nudge or
the sweep.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Q, QuerySet

from billing.events.models import MoneyEvent, MoneyEventCursor
from portal.logfmt import logfmt

logger = logging.getLogger(__name__)

# Events read per transaction: a run goes on with the next batch until none is left, or
# until it has read this many batches (then the task runs again at once: a consumer that
# events keep arriving for does not keep the others, or a worker, waiting).
BATCH_SIZE = 200
BATCHES_PER_RUN = 50


@dataclass(frozen=True)
class Consumer:
    name: str
    handle: Callable[[MoneyEvent], None]  # runs inside the run's transaction
    types: tuple[str, ...]  # the event types it reads; its cursor passes over the others


_consumers: dict[str, Consumer] = {}


def money_event_consumer_register(
    *, name: str, handle: Callable[[MoneyEvent], None], types: Iterable[str]
) -> None:
    """`handle(event)` is called once per event of `types`, in (xact_id, id) order, inside
    the transaction that moves this consumer's cursor: it writes what it owes there and
    hands anything slow to a task with transaction.on_commit. An exception stops the run
    before that event (logged); the next run tries it again."""
    _consumers[name] = Consumer(name=name, handle=handle, types=tuple(types))


def money_event_consumers() -> list[Consumer]:
    return list(_consumers.values())


@dataclass
class ConsumerRun:
    name: str
    processed: int = 0
    busy: bool = False  # another run holds the cursor (its own last look covers this one)
    waiting: bool = False  # committed events wait on an older transaction still open
    failed: bool = False  # the consumer raised: the run stopped before that event
    more: bool = False  # the run stopped after BATCHES_PER_RUN batches: more is readable


# The horizon: the oldest transaction of this database still running in the current
# snapshot, or the snapshot's xmax (one past the newest that ended) when none is. Every
# transaction below it has ended, and any transaction started later gets a higher id.
# Then this transaction's own id, if it has one: its own events are visible to it (a run
# reads before its consumer writes, so only a caller's transaction wrapping the run, as a
# test's does, has any).
_HORIZON_SQL = """
SELECT least(
    pg_snapshot_xmax(s.snap)::text::bigint,
    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s.snap) AS x
     WHERE NOT EXISTS (
         SELECT 1 FROM pg_stat_activity AS a
         WHERE a.backend_xid = x::xid
           AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())))
), pg_current_xact_id_if_assigned()::text::bigint
FROM (SELECT pg_current_snapshot() AS snap) AS s
"""


@dataclass(frozen=True)
class Horizon:
    below: int
    own: int | None

    def settled(self) -> Q:
        """The events every transaction that could still add one before has ended for."""
        q = Q(xact_id__lt=self.below)
        return q | Q(xact_id=self.own) if self.own is not None else q


def _horizon() -> Horizon:
    with connection.cursor() as cursor:
        cursor.execute(_HORIZON_SQL)
        below, own = cursor.fetchone()
    return Horizon(int(below), None if own is None else int(own))


Position = tuple[int, int]  # (xact_id, id)


def _after(position: Position, types: tuple[str, ...] | None = None) -> QuerySet[MoneyEvent]:
    """The events after a cursor's position (of `types`, or any): an index range from it."""
    xact_id, event_id = position
    events = MoneyEvent.objects.filter(xact_id__gte=xact_id).filter(
        Q(xact_id__gt=xact_id) | Q(id__gt=event_id)
    )
    return events if types is None else events.filter(type__in=types)


def _cursor_ensure(name: str) -> None:
    """A consumer's first run makes its cursor (at the start), before any claim: a row
    inserted in a claim's transaction would make a second run wait on it, not skip it."""
    if not MoneyEventCursor.objects.filter(name=name).exists():
        MoneyEventCursor.objects.bulk_create([MoneyEventCursor(name=name)], ignore_conflicts=True)


def _claim(name: str) -> MoneyEventCursor | None:
    """The consumer's cursor, locked for this transaction; None if another run holds it."""
    return MoneyEventCursor.objects.select_for_update(skip_locked=True).filter(name=name).first()


def _batch(consumer: Consumer, run: ConsumerRun) -> bool:
    """One transaction: claim, handle the next events, move the cursor. True when the
    batch was full (more may follow)."""
    with transaction.atomic():
        cursor = _claim(consumer.name)
        if cursor is None:
            run.busy = True
            return False
        horizon = _horizon()
        position: Position = (cursor.xact_id, cursor.event_id)
        events = list(
            _after(position, consumer.types)
            .filter(horizon.settled())
            .select_related("license")
            .order_by("xact_id", "id")[:BATCH_SIZE]
        )
        reached = position
        for event in events:
            try:
                with transaction.atomic():
                    consumer.handle(event)
            except Exception:
                run.failed = True
                logger.exception(
                    logfmt(
                        "money event consumer failed",
                        consumer=consumer.name,
                        money_event=event.pk,
                        type=event.type,
                        license=event.license_id,
                    )
                )
                break
            reached = (event.xact_id, event.pk)
            run.processed += 1
        full = len(events) == BATCH_SIZE
        if not run.failed and not full:
            # Every event of its types up to the last settled one was read: pass over
            # the others too, so the next run does not read them again.
            last = (
                _after(reached)
                .filter(horizon.settled())
                .order_by("-xact_id", "-id")
                .values_list("xact_id", "id")
                .first()
            )
            if last is not None and last > reached:
                reached = last
        if reached != position:
            cursor.xact_id, cursor.event_id = reached
            cursor.save(update_fields=["xact_id", "event_id", "updated_at"])
    return full and not run.failed


def money_event_consumer_run(consumer: Consumer) -> ConsumerRun:
    """Handle every event of the consumer's types that can be read now, batch by batch."""
    run = ConsumerRun(consumer.name)
    _cursor_ensure(consumer.name)
    for _ in range(BATCHES_PER_RUN):
        if _batch(consumer, run):
            continue
        if run.busy or run.failed:
            return run
        # Looked at once more after the commit: an event committed while this run held
        # the cursor had its own nudge turned away (busy), and this look is its reading.
        position = MoneyEventCursor.objects.filter(name=consumer.name).values_list(
            "xact_id", "event_id"
        )
        cursor = position.first() or (0, 0)
        after = _after(cursor, consumer.types)
        settled = _horizon().settled()
        if after.filter(settled).exists():
            continue
        run.waiting = after.exclude(settled).exists()
        return run
    run.more = True
    return run


def money_event_consumers_run() -> list[ConsumerRun]:
    """Run every registered consumer, each on its own: one failing does not hold the others."""
    runs = []
    for consumer in money_event_consumers():
        try:
            runs.append(money_event_consumer_run(consumer))
        except Exception:
            logger.exception(logfmt("money event consumer crashed", consumer=consumer.name))
            runs.append(ConsumerRun(consumer.name, failed=True))
    return runs
