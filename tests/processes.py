"""What tests run beside themselves: child processes (manage.py, Celery workers) pointed at
the test database, and the upstream simulator. The fixtures that use these live in the
conftest.py files (`start_worker` in tests/conftest.py, `start_simulator` in
tests/usage/conftest.py); tests/services.py adds private PostgreSQL and Redis servers."""

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from usage.simulator import LicenseProfile
from usage.simulator.core import Simulator
from usage.simulator.generator import Faults
from usage.simulator.server import RunningSimulator

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
BIN = Path(PYTHON).parent

if TYPE_CHECKING:  # tests/services.py, which the bench imports too, needs no Django set up
    from pytest_django.fixtures import Settings

    from accounts.models import License

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    condition: Callable[[], T | None], timeout: float = 30, message: str = "condition"
) -> T:
    """Poll `condition` until it returns something true (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {message}")


# --- child processes ---------------------------------------------------------------------


def current_database_url() -> str:
    """The database this process's tests use (the test database once it is set up)."""
    from django.db import connection

    s = connection.settings_dict
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def child_env(
    database_url: str | None = None, *, settings: "Settings | None" = None, **extra: str
) -> dict[str, str]:
    """The environment of a manage.py or celery child: this process's settings, pointed at
    `database_url` (default: the test database). With `settings`, the child also talks to
    the upstream those settings name (the test's simulator) with short backoffs."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DATABASE_URL=database_url or current_database_url(),
        DJANGO_SETTINGS_MODULE="portal.settings",
        DB_CONN_MAX_AGE="0",
    )
    if settings is not None:
        env.update(
            UPSTREAM_URL=settings.UPSTREAM_URL,
            UPSTREAM_TOKEN=settings.UPSTREAM_TOKEN,
            UPSTREAM_BACKOFF_SECONDS="0.01",
        )
    env.update(extra)
    return env


def manage(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run manage.py in a child process with this environment."""
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def process_stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it has not ended within 20 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Worker:
    """A real `celery worker` process (solo pool) on a queue of its own; its output goes
    to a log file (`output()`), never to a pipe nobody reads."""

    def __init__(self, env: dict[str, str], queue: str | None = None):
        self.queue = queue or f"test-{uuid.uuid4().hex[:12]}"
        self.log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN / "celery"), "-A", "portal", "worker", "-Q", self.queue, "--pool", "solo",
             "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        process_stop(self.proc)
        self.log.close()


class WebServer:
    """The portal under gunicorn (one sync worker, so one process's state), as `make run`
    serves it, with `env`; its output goes to a log file (`output()`)."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "portal.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--timeout", "60", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        import httpx

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.output()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=5).status_code in (200, 503)
            except httpx.TransportError:
                return False

        wait_for(answers, timeout=60, message="gunicorn to answer /healthz")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        process_stop(self.proc)
        self.log.close()


# --- the upstream simulator --------------------------------------------------------------

# The tests' clock: the simulator serves what had arrived by then.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def profile_for(
    license: "License", *, days: float = 3, calls_per_day: float = 400, **overrides: Any
) -> LicenseProfile:
    """A short, busy history ending at NOW for a test license (`overrides`: other fields of
    LicenseProfile)."""
    profile = LicenseProfile(
        key=license.key,
        timezone=license.timezone,
        history_start=NOW - timedelta(days=days),
        weekday_calls=calls_per_day,
        ramp_days=0,
    )
    return dataclasses.replace(profile, **overrides)


def simulator_start(
    *,
    profiles: list[LicenseProfile],
    token: str,
    seed: int = 7,
    faults: Faults | None = None,
    now: datetime | None = NOW,
) -> RunningSimulator:
    """The simulator serving over real HTTP on an ephemeral port, in a thread of this process."""
    simulator = Simulator(profiles=profiles, seed=seed, faults=faults, token=token, now=now)
    return RunningSimulator(simulator).start()
