"""`manage.py run_upstream_simulator`: the upstream simulator with the demo licenses' usage, for `make run`."""

import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from demo.upstream import demo_profiles
from usage.simulator import Faults
from usage.simulator.core import Simulator
from usage.simulator.server import SimulatorHTTPServer

logger = logging.getLogger(__name__)


def share(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Serve the upstream metering API (docs/upstream-api.md) for the demo licenses, "
        "with deterministic usage and optional fault injection."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8100)
        parser.add_argument("--seed", type=int, default=1, help="usage generator seed (default 1)")
        parser.add_argument(
            "--token", default=None, help="bearer token to accept (default UPSTREAM_TOKEN)"
        )
        faults = parser.add_argument_group("fault injection")
        faults.add_argument("--latency-ms", type=float, default=0, help="added latency per request")
        faults.add_argument(
            "--error-share", type=share, default=0, help="share of 5xx answers (0-1)"
        )
        faults.add_argument(
            "--timeout-share", type=share, default=0, help="share of requests that hang"
        )
        faults.add_argument("--timeout-seconds", type=float, default=30, help="how long they hang")
        faults.add_argument(
            "--repeat-share", type=share, default=0, help="share of pages repeating records"
        )
        faults.add_argument(
            "--late-share", type=share, default=0, help="share of records arriving late"
        )
        faults.add_argument(
            "--malformed-share",
            type=share,
            default=0,
            help="share of calls followed by a malformed record",
        )

    def handle(self, *args, host, port, seed, token, **options):
        faults = Faults(
            latency_ms=options["latency_ms"],
            error_share=options["error_share"],
            timeout_share=options["timeout_share"],
            timeout_seconds=options["timeout_seconds"],
            repeat_share=options["repeat_share"],
            late_share=options["late_share"],
            malformed_share=options["malformed_share"],
        )
        simulator = Simulator(
            profiles=demo_profiles(),
            seed=seed,
            faults=faults,
            token=token or settings.UPSTREAM_TOKEN,
        )
        server = SimulatorHTTPServer((host, port), simulator)
        # The first page asks for the whole history: generate it before saying we are up.
        for stream in simulator.streams.values():
            stream.extend_to(simulator.clock())

        def stop(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(
            f"upstream simulator on {server.url} (seed {seed}; licenses: {', '.join(simulator.streams)}"
            + (f"; faults: {faults}" if faults.any else "")
            + ")"
        )
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
