"""The upstream simulator for the tenants benchmark, in its own process (as the real
upstream would be on its own machine): many licenses, most of them idle.

    python -m bench.tenants_upstream --prefix T --licenses N --active K --records R --port P

Licenses `<prefix>-000001` … : the first K (spread evenly over the N) made about R calls
each in the five minutes before the pinned clock; the others made none at all. Prints
"ready <url> <records>" once every record is generated, then serves until terminated.
"""

import argparse
import signal
from datetime import UTC, datetime, timedelta

from bench.setup import configure_django

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
    from usage.simulator.generator import HOUR_WEIGHT_SUM, HOUR_WEIGHTS
    from usage.simulator.server import SimulatorHTTPServer

    now = datetime.fromisoformat(args.now).astimezone(UTC)
    # Calls per day that put about R calls in a five-minute slot at this hour (UTC).
    per_day = args.records * 12 * HOUR_WEIGHT_SUM / HOUR_WEIGHTS[now.hour]
    active = active_numbers(args.licenses, args.active)
    profiles = [
        LicenseProfile(
            key=license_key(args.prefix, n),
            timezone="UTC",
            history_start=now - WINDOW if n in active else now - timedelta(days=1),
            weekday_calls=per_day if n in active else 0,
            weekend_factor=1.0,
            ramp_days=0,
        )
        for n in range(1, args.licenses + 1)
    ]
    simulator = Simulator(profiles=profiles, seed=args.seed, token=args.token, now=now)
    for stream in simulator.streams.values():
        stream.extend_to(now)
    records = sum(simulator.summary(key=license_key(args.prefix, n))["records"] for n in active)
    simulator.changes(after="", limit=1)  # the feed's order, built once for the pinned clock
    server = SimulatorHTTPServer(("127.0.0.1", args.port), simulator)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"ready {server.url} {records}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
