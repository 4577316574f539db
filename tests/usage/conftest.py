"""The upstream simulator, started in this process on an ephemeral port for each test."""

from datetime import UTC, datetime, timedelta

import pytest

from usage.simulator import LicenseProfile
from usage.simulator.core import Simulator
from usage.simulator.generator import Faults
from usage.simulator.server import RunningSimulator

# The tests' clock: the simulator serves what had arrived by then.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def profile_for(
    license, *, days: float = 3, calls_per_day: float = 400, **overrides
) -> LicenseProfile:
    """A short, busy history ending at NOW for a test license."""
    options = {
        "key": license.key,
        "timezone": license.timezone,
        "history_start": NOW - timedelta(days=days),
        "weekday_calls": calls_per_day,
        "ramp_days": 0,
        **overrides,
    }
    return LicenseProfile(**options)


@pytest.fixture(autouse=True)
def _quick_upstream_client(settings):
    # Real timeouts and retries, just shorter, so fault tests finish in seconds.
    settings.UPSTREAM_CONNECT_TIMEOUT = 1.0
    settings.UPSTREAM_READ_TIMEOUT = 1.0
    settings.UPSTREAM_BACKOFF_SECONDS = 0.01
    settings.UPSTREAM_MAX_ATTEMPTS = 6


@pytest.fixture
def start_simulator(settings):
    """start_simulator(profiles=[...], faults=Faults(...), now=...) -> RunningSimulator,
    serving over real HTTP; settings.UPSTREAM_URL points at it."""
    running: list[RunningSimulator] = []

    def start(*, profiles, seed: int = 7, faults: Faults | None = None, now=NOW):
        simulator = Simulator(
            profiles=profiles, seed=seed, faults=faults, token=settings.UPSTREAM_TOKEN, now=now
        )
        server = RunningSimulator(simulator).start()
        settings.UPSTREAM_URL = server.url
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()
