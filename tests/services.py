"""Private, throwaway PostgreSQL and Redis instances for the fault tests.

The shared PostgreSQL on 5432 and Redis on 6379 serve other engineers and CI, so a test
that stops or restarts a service never touches them: it starts its own on a free port in
a temporary directory, and removes everything it started, even when it fails.

Benchmark 4 (bench/web.py) runs its primary and streaming standby with these classes too
(that cluster does not accept replication connections): its primary in a directory kept
between runs, its standby in a temporary one.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import psycopg
import redis

from tests.processes import PYTHON, ROOT, child_env, free_port, manage, wait_for

if TYPE_CHECKING:  # the bench imports this module without Django or pytest set up
    from celery import Celery
    from pytest_django.fixtures import Settings

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; the postgres OS user runs them instead.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


class PrivatePostgres:
    """A PostgreSQL cluster of its own: initdb'd in a temp dir (or in `directory`, kept for
    the next start), trust auth, fsync off."""

    database = "portal_faults"

    def __init__(self, directory: Path | None = None):
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory or Path(tempfile.mkdtemp(prefix="portal-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]),
            capture_output=True, text=True, timeout=60, check=check,
        )  # fmt: skip

    def start(self) -> "PrivatePostgres":
        if not self.data.exists():
            subprocess.run(
                _as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust",
                              "-U", "postgres", "-E", "UTF8", "--no-sync"]),
                capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
        # fsync off is safe here: the tests kill the server, never the machine. Commits stay
        # synchronous, so a committed transaction survives an immediate stop.
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", str(self.dir / "log"), "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        """What a crash-and-restart looks like to clients: every connection is cut, open
        transactions are rolled back, and the server answers again."""
        self.stop("immediate")
        self.start()

    def create_database(self) -> None:
        with psycopg.connect(
            f"postgres://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def connect(self, **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.url, **kwargs)

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateStandby(PrivatePostgres):
    """A streaming replica of a private primary: `pg_basebackup -R` (which writes the
    standby's primary_conninfo and standby.signal) into a temp dir, then its own postmaster
    on another free port. The primary needs nothing more than initdb gives it: wal_level
    replica and max_wal_senders are PostgreSQL's defaults, and initdb's pg_hba.conf has the
    line `host replication all 127.0.0.1/32 trust`."""

    def __init__(self, primary: PrivatePostgres):
        super().__init__()
        self.primary = primary
        self.database = primary.database

    def start(self) -> "PrivateStandby":
        if not self.data.exists():
            subprocess.run(
                _as_postgres([str(PG_BIN / "pg_basebackup"), "-D", str(self.data),
                              "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
                              "-R", "-X", "stream", "--no-sync", "--checkpoint=fast"]),
                # The bench copies a primary of several GB (bench/web.py); the tests' is small.
                capture_output=True, text=True, timeout=1200, check=True,
            )  # fmt: skip
        super().start()  # a data directory exists, so no initdb: it starts as a standby
        return self

    def execute(self, sql: str) -> tuple[Any, ...]:
        """The first row of `sql`'s answer, on the standby."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(sql).fetchone()
        if row is None:
            raise AssertionError(f"the standby answered no row to {sql!r}")
        return row

    def caught_up(self) -> bool:
        """Whether the standby has replayed everything the primary has written so far."""
        with self.primary.connect(autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        if row is None:
            raise AssertionError("the primary answered no WAL position")
        (primary_lsn,) = row
        (behind,) = self.execute(
            f"SELECT pg_wal_lsn_diff('{primary_lsn}', pg_last_wal_replay_lsn()) <= 0"
        )
        return bool(behind)

    def replay_pause(self) -> None:
        self.execute("SELECT pg_wal_replay_pause()")
        wait_for(
            lambda: self.execute("SELECT pg_get_wal_replay_pause_state()")[0] == "paused",
            message="the standby's replay to pause",
        )

    def replay_resume(self) -> None:
        self.execute("SELECT pg_wal_replay_resume()")


class PrivateRedis:
    """A redis-server of its own on a free port: no persistence, stopped and started at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # as abrupt as an outage
            self.proc.wait(timeout=10)
        self.proc = None


DEAD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _reset_celery_connections(app: "Celery") -> None:
    # Celery keeps its broker pool, producer pool and result backend once built; drop them
    # so the next use connects to the URLs now configured.
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


class redis_at:
    """Point this process's Redis users (Celery broker and results, /healthz, request
    metrics) at `url` for the block, then back."""

    KEYS = ("broker_url", "broker_write_url", "broker_read_url", "result_backend")
    # Celery reads these from the environment before its configuration (and .env puts
    # them there), so they are switched too.
    ENVIRON = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL")

    def __init__(self, url: str, settings: "Settings"):
        self.url = url
        self.settings = settings

    def __enter__(self) -> "redis_at":
        from portal.celery import app
        from portal.metrics import request_counter

        self.app = app
        self.saved = {key: app.conf.get(key) for key in self.KEYS}
        self.saved_redis_url = self.settings.REDIS_URL
        self.saved_environ = {name: os.environ.get(name) for name in self.ENVIRON}
        os.environ.update(dict.fromkeys(self.ENVIRON, self.url))
        app.conf.update(dict.fromkeys(self.KEYS, self.url))
        self.settings.REDIS_URL = self.url
        _reset_celery_connections(app)
        request_counter._client, request_counter._paused_until = None, 0.0
        request_counter._flushed_at = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        from portal.metrics import request_counter

        self.app.conf.update(self.saved)
        for name, value in self.saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.settings.REDIS_URL = self.saved_redis_url
        _reset_celery_connections(self.app)
        request_counter._client, request_counter._paused_until = None, 0.0
        request_counter._flushed_at = 0.0


def migrated_private_postgres() -> Iterator[PrivatePostgres]:
    """Generator for a module fixture: a started, migrated private cluster, removed after."""
    cluster = PrivatePostgres()
    try:
        cluster.start()
        cluster.create_database()
        result = manage("migrate", "--noinput", env=child_env(cluster.url), timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        yield cluster
    finally:
        cluster.close()


@overload
def private_child(
    cluster: PrivatePostgres, *args: str, check: Literal[True] = True
) -> dict[str, Any]: ...
@overload
def private_child(
    cluster: PrivatePostgres, *args: str, check: Literal[False]
) -> subprocess.CompletedProcess[str]: ...
def private_child(
    cluster: PrivatePostgres, *args: str, check: bool = True
) -> dict[str, Any] | subprocess.CompletedProcess[str]:
    """Run a step of tests/private_child.py against the cluster; its JSON answer (or, with
    check=False, the CompletedProcess)."""
    import json

    result = subprocess.run(
        [PYTHON, "-m", "tests.private_child", *args], cwd=ROOT, env=child_env(cluster.url),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if not check:
        return result
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_until_blocked_by(
    watcher: psycopg.Connection, holder: psycopg.Connection, *, message: str, timeout: float = 30
) -> None:
    """Wait until a backend waits on a lock `holder` holds, inside a transaction that has
    already written (it has a transaction id): a crash then lands mid-transaction. Known by
    whom it waits for (pg_blocking_pids), not by the text of its SQL, so the statement may
    be written any way and any length (pg_stat_activity shows only its first kilobyte)."""
    pid = holder.info.backend_pid

    def blocked() -> int:
        row = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE backend_xid IS NOT NULL AND %s = ANY(pg_blocking_pids(pid))",
            [pid],
        ).fetchone()
        assert row is not None  # count(*) answers one row
        return int(row[0])

    wait_for(blocked, timeout=timeout, message=message)


class HangingServer:
    """A dependency that accepts connections on loopback and never answers: the fault a
    refused connection does not show (a stuck Redis, SMTP or upstream). Counts the
    connections it accepted; closes them all when stopped."""

    def __init__(self) -> None:
        import threading

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)  # held open, never read from or written to

    def url(self, scheme: str, path: str = "") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> "HangingServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self.sock.close()
