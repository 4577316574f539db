"""The upstream simulator for the tenants benchmark, in its own process (as the real
upstream would be on its own machine): many licenses, most of them idle.

    python -m bench.tenants_upstream --prefix T --licenses N --active K --records R --port P

Licenses `<prefix>-000001` … : K of them (spread evenly over the N) made R calls each in
the five minutes before the pinned clock; the others made none at all. Prints
"ready <url> <records>" once every record is generated, then serves until terminated.
"""

import argparse
import random
from datetime import UTC, datetime, timedelta

from bench.setup import configure_django
from bench.upstream import serve_until_terminated

WINDOW = timedelta(minutes=5)


def license_key(prefix: str, number: int) -> str:
    return f"{prefix}-{number:06d}"


def active_numbers(licenses: int, active: int) -> set[int]:
    """Which license numbers (1 … licenses) are the active ones: spread evenly."""
    if not active:
        return set()
    step = licenses / active
    return {1 + int(i * step) for i in range(active)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--licenses", type=int, required=True)
    parser.add_argument("--active", type=int, required=True)
    parser.add_argument("--records", type=int, required=True, help="per active license")
    parser.add_argument("--now", required=True, help="the pinned clock, ISO 8601")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    configure_django()
    from usage.simulator import LicenseProfile
    from usage.simulator.core import Simulator
    from usage.simulator.generator import Record, from_us, id_prefix, to_us
    from usage.simulator.generator import _call_body as call_body
    from usage.simulator.server import SimulatorHTTPServer

    now = datetime.fromisoformat(args.now).astimezone(UTC)
    active = active_numbers(args.licenses, args.active)
    # Every license makes no calls to the generator: the active ones' five minutes are
    # written straight into their streams below (the generator would draw a whole day of
    # calls for each, a hundred times what the bench needs).
    profiles = [
        LicenseProfile(
            key=license_key(args.prefix, n),
            timezone="UTC",
            history_start=now - timedelta(days=1),
            weekday_calls=0,
        )
        for n in range(1, args.licenses + 1)
    ]
    simulator = Simulator(profiles=profiles, seed=args.seed, token=args.token, now=now)
    for stream in simulator.streams.values():
        stream.extend_to(now)
    rng = random.Random(args.seed)
    window_us = int(WINDOW.total_seconds() * 1_000_000)
    for n in sorted(active):
        key = license_key(args.prefix, n)
        stream = simulator.streams[key]
        records = []
        for i in range(args.records):
            # Arrived within the five minutes, a few seconds after the call.
            available = to_us(now) - rng.randrange(window_us)
            occurred_at = from_us(available - rng.randrange(5_000_000))
            record_id = f"{id_prefix(args.seed, key)}_{available}_{i}"
            body = call_body(
                rng, record_id=record_id, key=key, occurred_at=occurred_at, error_share=0.03
            )
            records.append(Record((available, record_id), occurred_at, body, True))
        records.sort(key=lambda r: r.stream_key)
        stream.snapshot = (records, [r.stream_key for r in records])
    records_total = len(active) * args.records
    simulator.changes(after="", limit=1)  # the feed's order, built once for the pinned clock
    server = SimulatorHTTPServer(("127.0.0.1", args.port), simulator)

    serve_until_terminated(server, records_total)


if __name__ == "__main__":
    main()
