"""The upstream simulator for the ingest benchmark, in its own process (as the real
upstream would be on its own machine), serving one license's fixed history.

    python -m bench.upstream --license KEY --records N --port P

The clock is pinned, so the history is the same at every request: about N well-formed
records over 30 days, no faults. Prints "ready <url> <records>" once every record is
generated, then serves until terminated.
"""

import argparse
import signal
from datetime import UTC, datetime, timedelta

from bench.setup import configure_django

DAYS = 30
# The simulator's weekly shape: five full weekdays and two at its weekend factor (0.3).
WEEKDAY_SHARE = (5 + 2 * 0.3) / 7


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--license", required=True)
    parser.add_argument("--timezone", default="America/New_York")
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    configure_django()
    from usage.simulator import LicenseProfile
    from usage.simulator.core import Simulator
    from usage.simulator.server import SimulatorHTTPServer

    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    profile = LicenseProfile(
        key=args.license,
        timezone=args.timezone,
        history_start=now - timedelta(days=DAYS),
        weekday_calls=args.records / DAYS / WEEKDAY_SHARE,
        ramp_days=0,
    )
    simulator = Simulator(profiles=[profile], seed=11, token=args.token, now=now)
    server = SimulatorHTTPServer(("127.0.0.1", args.port), simulator)
    stream = simulator.streams[args.license]
    stream.extend_to(now)
    records = simulator.summary(key=args.license)["records"]

    serve_until_terminated(server, records)


def serve_until_terminated(server, records: int) -> None:
    """Say "ready <url> <records>" to the bench, then serve until SIGTERM."""

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
