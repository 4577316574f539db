"""The simulator's state: per-license record streams, the clock, faults and counters.

The HTTP layer (server.py) only parses requests and calls `Simulator`. Tests may call it
directly, but the sync tests go through HTTP like the portal does.
"""

import bisect
import hashlib
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from usage.simulator.generator import (
    QUANTITIES,
    Faults,
    LicenseProfile,
    Record,
    from_us,
    generate_day,
    rfc3339,
    to_us,
)

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
FEED_DEFAULT_LIMIT = 1000
FEED_MAX_LIMIT = 10000


class BadCursor(ValueError):
    pass


def encode_cursor(stream_key: tuple[int, str]) -> str:
    available_us, internal_id = stream_key
    return f"c1.{available_us}.{internal_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    if not cursor:
        return (-1, "")
    parts = cursor.split(".", 2)
    if len(parts) != 3 or parts[0] != "c1" or not parts[1].isdigit() or not parts[2]:
        raise BadCursor(cursor)
    return (int(parts[1]), parts[2])


def encode_feed_cursor(position: tuple[int, str]) -> str:
    available_us, key = position
    return f"f1.{available_us}.{key}"


def decode_feed_cursor(cursor: str) -> tuple[int, str]:
    if not cursor:
        return (-1, "")
    parts = cursor.split(".", 2)
    if len(parts) != 3 or parts[0] != "f1" or not parts[1].isdigit() or not parts[2]:
        raise BadCursor(cursor)
    return (int(parts[1]), parts[2])


@dataclass
class ChangesPage:
    licenses: list[dict]  # {"license": key, "new_usage_at": the newest record's arrival}
    next_cursor: str
    has_more: bool


@dataclass
class Page:
    records: list[dict]
    next_cursor: str | None  # None: nothing new, the caller's cursor stands
    has_more: bool


class LicenseStream:
    """All records of one license generated so far, in stream (availability) order."""

    def __init__(self, profile: LicenseProfile, *, seed: int, faults: Faults):
        self.profile = profile
        self.seed = seed
        self.faults = faults
        # Records in stream order and their keys, replaced together (readers in other
        # threads take both from one attribute read).
        self.snapshot: tuple[list[Record], list[tuple[int, str]]] = ([], [])
        self.generated_until: date | None = None  # last UTC day generated
        self.lock = threading.Lock()

    def extend_to(self, now: datetime) -> None:
        """Generate every day up to the one `now` falls in (records of a day can only
        become available on or after that day)."""
        last = now.astimezone(UTC).date()
        with self.lock:
            day = (
                self.generated_until + timedelta(days=1)
                if self.generated_until
                else self.profile.history_start.astimezone(UTC).date()
            )
            if day > last:
                return
            new: list[Record] = []
            while day <= last:
                new.extend(
                    generate_day(self.profile, day, seed=self.seed, faults=self.faults).records
                )
                day += timedelta(days=1)
            records = sorted([*self.snapshot[0], *new], key=lambda r: r.stream_key)
            self.snapshot = (records, [r.stream_key for r in records])
            self.generated_until = last

    @property
    def records(self) -> list[Record]:
        return self.snapshot[0]

    def page(
        self, *, after: tuple[int, str], limit: int, now: datetime, rng: random.Random | None
    ) -> tuple[Page, int]:
        """Records after `after` available by `now`; returns the page and how many records
        were repeated from earlier pages (the repeat fault)."""
        self.extend_to(now)
        records, keys = self.snapshot
        now_us = to_us(now)
        start = bisect.bisect_right(keys, after)
        repeats: list[Record] = []
        if rng is not None and start > 0 and rng.random() < self.faults.repeat_share:
            count = min(start, rng.randint(1, 3), max(limit - 1, 0))
            repeats = records[start - count : start]
        fresh_room = max(limit - len(repeats), 1)
        fresh: list[Record] = []
        i = start
        while i < len(records) and len(fresh) < fresh_room:
            if records[i].available_us > now_us:
                break
            fresh.append(records[i])
            i += 1
        has_more = i < len(records) and records[i].available_us <= now_us
        next_cursor = encode_cursor(fresh[-1].stream_key) if fresh else None
        bodies = [r.body for r in repeats] + [r.body for r in fresh]
        repeated = len(repeats)
        room = len(bodies) < limit
        if rng is not None and room and len(fresh) > 1 and rng.random() < self.faults.repeat_share:
            # A record served twice in the same page, too.
            bodies.insert(rng.randrange(len(bodies)), rng.choice(fresh).body)
            repeated += 1
        return Page(bodies, next_cursor, has_more), repeated

    def newest_available(self, *, now: datetime) -> int | None:
        """When the newest record available by `now` arrived (microseconds), None: none yet."""
        self.extend_to(now)
        keys = self.snapshot[1]
        end = bisect.bisect_right(keys, (to_us(now), "\uffff"))
        return keys[end - 1][0] if end else None

    def summary(self, *, now: datetime) -> dict:
        self.extend_to(now)
        stream, keys = self.snapshot
        now_us = to_us(now)
        end = bisect.bisect_right(keys, (now_us, "\uffff"))
        totals = dict.fromkeys(QUANTITIES, 0)
        records = errors = malformed = 0
        first: datetime | None = None
        last: datetime | None = None
        for record in stream[:end]:
            if not record.well_formed:
                malformed += 1
                continue
            records += 1
            body = record.body
            errors += body["status"] != "success"
            for name in QUANTITIES:
                totals[name] += body[name]
            first = record.occurred_at if first is None else min(first, record.occurred_at)
            last = record.occurred_at if last is None else max(last, record.occurred_at)
        return {
            "license": self.profile.key,
            "horizon": rfc3339(from_us(now_us)),
            "records": records,
            "success": records - errors,
            "errors": errors,
            **totals,
            "tokens": totals["input_tokens"]
            + totals["cached_tokens"]
            + totals["completion_tokens"],
            "malformed_served": malformed,
            "first_occurred_at": rfc3339(first) if first else None,
            "last_occurred_at": rfc3339(last) if last else None,
        }


@dataclass
class Stats:
    requests: int = 0
    errors_injected: int = 0
    timeouts_injected: int = 0
    records_repeated: int = 0
    pages_served: int = 0
    by_path: dict[str, int] = field(default_factory=dict)


class Simulator:
    """What the HTTP server serves. `now` pins the clock (tests); None is the wall clock."""

    def __init__(
        self,
        *,
        profiles: list[LicenseProfile],
        seed: int = 1,
        faults: Faults | None = None,
        token: str,
        now: datetime | None = None,
    ):
        self.seed = seed
        self.faults = faults or Faults()
        self.token = token
        self.now = now
        self.streams = {p.key: LicenseStream(p, seed=seed, faults=self.faults) for p in profiles}
        self.stats = Stats()
        self._rng = random.Random(f"{seed}:requests")
        self._rng_lock = threading.Lock()
        # The feed's order at the last clock reading asked about: (now, sorted positions).
        self._feed: tuple[int, list[tuple[int, str]]] | None = None

    def clock(self) -> datetime:
        return self.now if self.now is not None else datetime.now(tz=UTC)

    def roll(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def page_rng(self) -> random.Random:
        with self._rng_lock:
            return random.Random(self._rng.getrandbits(64))

    def count_request(self, path: str) -> None:
        with self._rng_lock:
            self.stats.requests += 1
            self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1

    def count(self, **increments: int) -> None:
        with self._rng_lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    def usage_page(self, *, key: str, after: str, limit: int) -> Page:
        stream = self.streams[key]
        page, repeated = stream.page(
            after=decode_cursor(after),
            limit=limit,
            now=self.clock(),
            rng=self.page_rng() if self.faults.repeat_share else None,
        )
        self.count(records_repeated=repeated, pages_served=1)
        if page.next_cursor is None:
            page.next_cursor = after
        if self.faults.hostile_texts:
            page.records = [self._hostile(body) for body in page.records]
        return page

    def changes(self, *, after: str, limit: int) -> ChangesPage:
        """The licenses with records that arrived after the feed cursor `after`, oldest
        change first. Each license sits in the feed at its newest record's arrival, so a
        license with new usage moves past every cursor handed out before: whoever follows
        the cursor sees it again, and sees every license with new usage at least once."""
        position = decode_feed_cursor(after)
        now = self.clock()
        now_us = to_us(now)
        feed = self._feed
        if feed is None or feed[0] != now_us:
            ordered = sorted(
                (newest, key)
                for key, stream in self.streams.items()
                if (newest := stream.newest_available(now=now)) is not None
            )
            feed = self._feed = (now_us, ordered)
        ordered = feed[1]
        start = bisect.bisect_right(ordered, position)
        chosen = ordered[start : start + limit]
        return ChangesPage(
            [{"license": key, "new_usage_at": rfc3339(from_us(us))} for us, key in chosen],
            encode_feed_cursor(chosen[-1]) if chosen else after,
            start + limit < len(ordered),
        )

    def _hostile(self, body: dict) -> dict:
        texts = self.faults.hostile_texts
        if not isinstance(body.get("id"), str):
            return body
        pick = int(hashlib.sha256(body["id"].encode()).hexdigest(), 16)
        return {
            **body,
            "endpoint": texts[pick % len(texts)],
            "request_id": texts[(pick // len(texts)) % len(texts)],
        }

    def summary(self, *, key: str) -> dict:
        return self.streams[key].summary(now=self.clock())
