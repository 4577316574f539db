"""The upstream simulator, started in this process on an ephemeral port for each test."""

from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from pytest_django.fixtures import Settings

from tests.processes import NOW, simulator_start
from usage.simulator.generator import Faults, LicenseProfile
from usage.simulator.server import RunningSimulator


@pytest.fixture(autouse=True)
def _quick_upstream_client(settings: Settings) -> None:
    # Real timeouts and retries, just shorter, so fault tests finish in seconds.
    settings.UPSTREAM_CONNECT_TIMEOUT = 1.0
    settings.UPSTREAM_READ_TIMEOUT = 1.0
    settings.UPSTREAM_BACKOFF_SECONDS = 0.01
    settings.UPSTREAM_MAX_ATTEMPTS = 6


@pytest.fixture
def start_simulator(settings: Settings) -> Iterator[Callable[..., RunningSimulator]]:
    """start_simulator(profiles=[...], faults=Faults(...), now=...) -> RunningSimulator,
    serving over real HTTP; settings.UPSTREAM_URL points at it."""
    running: list[RunningSimulator] = []

    def start(
        *,
        profiles: list[LicenseProfile],
        seed: int = 7,
        faults: Faults | None = None,
        now: datetime | None = NOW,
    ) -> RunningSimulator:
        server = simulator_start(
            profiles=profiles, seed=seed, faults=faults, token=settings.UPSTREAM_TOKEN, now=now
        )
        settings.UPSTREAM_URL = server.url
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()
