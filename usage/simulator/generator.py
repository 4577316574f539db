"""Deterministic usage for the upstream simulator.

Usage is generated per license and per UTC day from a random generator seeded with
(seed, license key, day), so the same day always yields the same calls, whichever process
asks and whenever. A call's id is made of the license, its 5-minute slot on a fixed grid
(minutes since the Unix epoch / 5) and its index in the slot: a restarted simulator serves
the very same ids, and the portal never charges a call twice.

Faults that change records (late arrival, malformed extras) draw from a second generator
seeded the same way, and every draw is made whether or not the fault is switched on, so
switching a fault on or off never changes the well-formed records themselves.
"""

import hashlib
import math
import random
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

SLOT_SECONDS = 300
SLOTS_PER_DAY = 86400 // SLOT_SECONDS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Relative volume by local hour: quiet nights, busy office hours.
HOUR_WEIGHTS = (
    0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.4, 0.8, 1.3, 1.7, 1.9, 1.9,
    1.6, 1.8, 1.9, 1.8, 1.6, 1.2, 0.9, 0.7, 0.55, 0.45, 0.3, 0.2,
)  # fmt: skip
HOUR_WEIGHT_SUM = sum(HOUR_WEIGHTS)

ENDPOINTS = (
    ("/v1/chat/completions", 0.58),
    ("/v1/embeddings", 0.2),
    ("/v1/images/generations", 0.1),
    ("/v1/images/analyze", 0.12),
)

MALFORMED_KINDS = (
    "missing_field",
    "negative_tokens",
    "unknown_license",
    "bad_date",
    "non_integer_tokens",
    "id_too_long",
    "control_characters",
)

QUANTITIES = ("input_tokens", "cached_tokens", "completion_tokens", "images")


@dataclass(frozen=True)
class LicenseProfile:
    """How one license uses the service."""

    key: str
    timezone: str
    history_start: datetime
    weekday_calls: float  # calls on a weekday at full volume
    weekend_factor: float = 0.3
    ramp_days: int = 180  # volume grows from 30% to 100% over these first days
    error_share: float = 0.03
    stop_at: datetime | None = None  # no calls after this moment (tests use it)


@dataclass(frozen=True)
class Faults:
    """Fault injection. Shares are probabilities between 0 and 1."""

    latency_ms: float = 0.0
    error_share: float = 0.0  # 5xx answers to /v1/usage and /v1/ping
    timeout_share: float = 0.0  # requests that hang for timeout_seconds first
    timeout_seconds: float = 30.0
    repeat_share: float = 0.0  # pages that repeat records already served
    late_share: float = 0.0  # records that arrive 30 minutes to 6 hours late
    malformed_share: float = 0.0  # calls followed by a malformed record
    feed_error_share: float = 0.0  # 5xx answers to /v1/usage/changes only (the feed)
    # Hostile text: served records carry these strings as endpoint and request_id (chosen
    # by record id, so a repeat serves the same text). Counts are untouched: the summary
    # stays the reference.
    hostile_texts: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return any(
            (
                self.latency_ms,
                self.error_share,
                self.timeout_share,
                self.repeat_share,
                self.late_share,
                self.malformed_share,
                self.feed_error_share,
                self.hostile_texts,
            )
        )


@dataclass(frozen=True)
class Record:
    """One record of the stream: what is served (`body`) and where it sits in the stream."""

    stream_key: tuple[int, str]  # (available_at in microseconds, internal id): the order
    occurred_at: datetime
    body: dict
    well_formed: bool

    @property
    def available_us(self) -> int:
        return self.stream_key[0]


@dataclass
class DayUsage:
    records: list[Record] = field(default_factory=list)


def to_us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def id_prefix(seed: int, key: str) -> str:
    return "u" + hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:10]


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method; lam is small (under ~5) per slot, so this is quick and exact enough.
    threshold = math.exp(-lam)
    k, p = 0, rng.random()
    while p > threshold:
        k += 1
        p *= rng.random()
    return k


def _lognormal_int(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return max(low, min(high, round(rng.lognormvariate(math.log(median), sigma))))


def _call_body(
    rng: random.Random, *, record_id: str, key: str, occurred_at: datetime, error_share: float
) -> dict:
    roll, endpoint = rng.random(), ENDPOINTS[-1][0]
    for name, share in ENDPOINTS:
        if roll < share:
            endpoint = name
            break
        roll -= share
    quantities = dict.fromkeys(QUANTITIES, 0)
    if endpoint == "/v1/chat/completions":
        quantities["input_tokens"] = _lognormal_int(rng, 1400, 0.9, 20, 60_000)
        if rng.random() < 0.4:
            quantities["cached_tokens"] = round(quantities["input_tokens"] * rng.uniform(0.2, 0.9))
        quantities["completion_tokens"] = _lognormal_int(rng, 380, 0.8, 1, 8_000)
    elif endpoint == "/v1/embeddings":
        quantities["input_tokens"] = _lognormal_int(rng, 520, 0.7, 5, 8_000)
    elif endpoint == "/v1/images/generations":
        quantities["input_tokens"] = _lognormal_int(rng, 60, 0.5, 5, 400)
        quantities["images"] = rng.choice((1, 1, 1, 2, 4))
    else:
        quantities["input_tokens"] = _lognormal_int(rng, 90, 0.5, 5, 600)
        quantities["completion_tokens"] = _lognormal_int(rng, 160, 0.6, 1, 1_500)
        quantities["images"] = rng.choice((1, 1, 2))
    request_id = f"req_{rng.getrandbits(64):016x}"
    status = "success"
    if rng.random() < error_share:
        status = "error"
        # A failed call is still a call; half of them failed before using anything.
        kept_input = quantities["input_tokens"] if rng.random() < 0.5 else 0
        quantities = {**dict.fromkeys(QUANTITIES, 0), "input_tokens": kept_input}
    return {
        "id": record_id,
        "license": key,
        "occurred_at": rfc3339(occurred_at),
        "request_id": request_id,
        "endpoint": endpoint,
        "status": status,
        **quantities,
    }


def _malformed(body: dict, kind: str, frng: random.Random) -> dict:
    bad = dict(body)
    bad["id"] = f"{body['id']}m"
    bad["request_id"] = f"{body['request_id']}m"
    if kind == "missing_field":
        bad.pop(("occurred_at", "input_tokens", "status", "id", "license")[frng.randrange(5)])
    elif kind == "negative_tokens":
        bad["completion_tokens"] = -frng.randint(1, 500)
    elif kind == "unknown_license":
        bad["license"] = "UNKNOWN-" + body["license"][:4] + "-9999"
    elif kind == "bad_date":
        bad["occurred_at"] = frng.choice(("2026-02-30T10:00:00Z", "yesterday", "", "1700000000"))
    elif kind == "non_integer_tokens":
        bad["input_tokens"] = frng.choice((12.5, "1200", None, True, float("nan")))
    elif kind == "id_too_long":
        bad["id"] = bad["id"] + "x" * 300
    elif kind == "control_characters":
        # NUL, which PostgreSQL text cannot store, in the id or the endpoint.
        field = frng.choice(("id", "endpoint"))
        bad[field] = bad[field][:5] + "\x00" + bad[field][5:]
    return bad


def _ramp(profile: LicenseProfile, day: date) -> float:
    age = (day - profile.history_start.date()).days
    if profile.ramp_days <= 0 or age >= profile.ramp_days:
        return 1.0
    return 0.3 + 0.7 * max(age, 0) / profile.ramp_days


def generate_day(profile: LicenseProfile, day: date, *, seed: int, faults: Faults) -> DayUsage:
    """Every record of one UTC day for one license, whether or not it is available yet."""
    if profile.weekday_calls <= 0:
        # A license that makes no calls: nothing to draw (the tenants bench serves a
        # hundred thousand of them).
        return DayUsage()
    rng = random.Random(f"{seed}:{profile.key}:{day.isoformat()}")
    frng = random.Random(f"{seed}:{profile.key}:{day.isoformat()}:faults")
    tz = zoneinfo.ZoneInfo(profile.timezone)
    prefix = id_prefix(seed, profile.key)
    day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    first_slot = to_us(day_start) // 1_000_000 // SLOT_SECONDS
    ramp = _ramp(profile, day)
    usage = DayUsage()
    for i in range(SLOTS_PER_DAY):
        slot = first_slot + i
        slot_start = day_start + timedelta(seconds=i * SLOT_SECONDS)
        local = slot_start.astimezone(tz)
        weekend = local.weekday() >= 5
        per_day = profile.weekday_calls * ramp * (profile.weekend_factor if weekend else 1.0)
        lam = per_day * HOUR_WEIGHTS[local.hour] / HOUR_WEIGHT_SUM / 12
        for k in range(_poisson(rng, lam)):
            occurred_at = slot_start + timedelta(microseconds=rng.randrange(SLOT_SECONDS * 10**6))
            record_id = f"{prefix}_{slot}_{k}"
            body = _call_body(
                rng,
                record_id=record_id,
                key=profile.key,
                occurred_at=occurred_at,
                error_share=profile.error_share,
            )
            # Fault draws, always made (see module docstring).
            late_roll, late_delay = frng.random(), frng.uniform(1800, 6 * 3600)
            ingest_delay = frng.uniform(0, 20)
            bad_roll, bad_kind = (
                frng.random(),
                MALFORMED_KINDS[frng.randrange(len(MALFORMED_KINDS))],
            )
            bad_delay = frng.uniform(0, 20)
            frng_state = frng.getrandbits(32)
            if occurred_at < profile.history_start or (
                profile.stop_at is not None and occurred_at > profile.stop_at
            ):
                continue
            delay = late_delay if late_roll < faults.late_share else ingest_delay
            available = to_us(occurred_at) + round(delay * 1_000_000)
            usage.records.append(Record((available, record_id), occurred_at, body, True))
            if bad_roll < faults.malformed_share:
                bad = _malformed(body, bad_kind, random.Random(frng_state))
                available = to_us(occurred_at) + round(bad_delay * 1_000_000)
                usage.records.append(Record((available, f"{record_id}m"), occurred_at, bad, False))
    return usage
