"""Starts the whole portal in the foreground: the upstream simulator (unless UPSTREAM_URL
names an upstream) and localstripe (unless STRIPE_SECRET_KEY is set), then (with --seed-demo) the demo data synced from it, then web
(gunicorn), one Celery worker, the webhooks worker and Celery beat. Ctrl-C (or any of them
dying) stops them all — except the simulator, which is restarted when it exits (the portal
keeps serving; after SIMULATOR_RESTARTS exits in a few minutes it stays down, and says so).
The ports come from settings (PORT, and what settings derive from it), and what the
processes keep on disk stays in the checkout (var/run-PORT/), so a second copy on the
same machine needs only another PORT (plus its own database and Redis db).

The terminal stays readable: one line per process started, naming its log file; each
process writes to its own log under var/run-PORT/ (web's access log to web-access.log), and
one that exits shows the end of its log here."""

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.management.base import BaseCommand

from demo.accounts import DEMO_LOGINS, DEMO_PASSWORD, DEMO_TOTP_SECRET

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run web, worker, beat and the upstream simulator together (what `make run` does)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument(
            "--seed-demo",
            action="store_true",
            help="once the simulator answers, run seed_demo before starting the rest",
        )

    def handle(self, *args, host, port, workers, seed_demo, **options):
        bin_dir = Path(sys.executable).parent
        state_dir = Path(settings.BASE_DIR) / "var" / f"run-{port}"
        state_dir.mkdir(parents=True, exist_ok=True)
        # Everything started from here talks to the same upstream and links to this port.
        env = {**os.environ, "PORT": str(port), "UPSTREAM_URL": settings.UPSTREAM_URL}
        python = str(bin_dir / "python")
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        simulator = self.simulator_command(python, manage)
        stripe_fake = self.localstripe_command(python)
        if stripe_fake:
            # Everything started from here pays through this fake Stripe (docs/payments.md).
            env.update(self.localstripe_env())
        commands = self.commands(bin_dir, state_dir, host, port, workers)
        children: list[tuple[str, subprocess.Popen]] = []
        logs: dict[str, IO[bytes]] = {}

        def start(name: str, argv: list[str], what: str) -> subprocess.Popen:
            """Start one process, its output to var/run-PORT/<name>.log; one line here."""
            if name not in logs:
                logs[name] = (state_dir / f"{name}.log").open("ab")
            proc = subprocess.Popen(  # noqa: S603
                argv, env=env, start_new_session=True, stdout=logs[name], stderr=subprocess.STDOUT
            )
            if what:  # a restart says so itself
                log = self.shown_path(state_dir / f"{name}.log")
                self.stdout.write(f"  {name:<12}{what}  (log: {log})")
            return proc

        def stop_all(*_):
            for _name, proc in children:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for _name, proc in children:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            for log in logs.values():
                log.close()

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        # Installed explicitly: a shell that starts us in the background ignores SIGINT,
        # and Python would inherit that.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, interrupt)
        try:
            if simulator:
                simulator_what = f"upstream simulator on {settings.UPSTREAM_URL}"
                children.append(("simulator", start("simulator", simulator, simulator_what)))
                problem = self.wait_for_simulator(children[-1][1])
                if problem:
                    self.stderr.write(f"{problem}; stopping.")
                    self.log_tail(state_dir / "simulator.log")
                    stop_all()
                    sys.exit(1)
            if stripe_fake:
                what = f"localstripe (a fake Stripe) on {self.localstripe_url()}"
                children.append(("localstripe", start("localstripe", stripe_fake, what)))
                problem = self.localstripe_ready(children[-1][1], port)
                if problem:
                    self.stderr.write(f"{problem}; stopping.")
                    self.log_tail(state_dir / "localstripe.log")
                    stop_all()
                    sys.exit(1)
            if seed_demo:
                self.stdout.write(
                    "loading the demo data (the first sync of a long history takes a moment; "
                    f"its log: {self.shown_path(state_dir / 'seed.log')})…"
                )
                # What it loaded on the terminal, its log lines in the file.
                with (state_dir / "seed.log").open("ab") as seed_log:
                    seeded = subprocess.run(  # noqa: S603
                        [python, manage, "seed_demo"], env=env, check=False, stderr=seed_log
                    )
                if seeded.returncode != 0:
                    self.stderr.write("seed_demo failed; stopping.")
                    self.log_tail(state_dir / "seed.log")
                    stop_all()
                    sys.exit(seeded.returncode)
            for name, argv in commands:
                children.append((name, start(name, argv, self.DESCRIPTIONS[name].format(
                    host="127.0.0.1" if host in {"0.0.0.0", "::"} else host,  # noqa: S104
                    port=port,
                    workers=workers,
                ))))  # fmt: skip
            self.banner(host, port, stripe=bool(stripe_fake))
            restarts: list[float] = []
            while True:
                for index, (name, proc) in enumerate(children):
                    if proc.poll() is None:
                        continue
                    if name == "simulator" and simulator:
                        # The portal goes on without its upstream (syncs fail and retry, the
                        # dashboard says the data is stale): restart the simulator.
                        replacement = self.simulator_restart(
                            simulator, proc, restarts, lambda argv: start("simulator", argv, "")
                        )
                        children[index] = (name, replacement or proc)
                        if replacement is None:
                            simulator = None  # given up: keep serving without it
                        continue
                    if name == "simulator":
                        continue
                    self.stderr.write(f"{name} exited with status {proc.returncode}; stopping.")
                    self.log_tail(state_dir / f"{name}.log")
                    return_code = proc.returncode or 1
                    stop_all()
                    sys.exit(return_code)
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nstopping web, worker, beat, simulator and localstripe…")
            stop_all()
            self.stdout.write("stopped.")

    def commands(self, bin_dir: Path, state_dir: Path, host: str, port: int, workers: int):
        # gunicorn's control socket defaults to ~/.gunicorn/gunicorn.ctl, one path for every
        # copy on the machine: keep it beside the beat schedule (off if the path is too long
        # for a Unix socket).
        control = state_dir / "gunicorn.ctl"
        control_socket = (
            ["--control-socket", str(control)]
            if len(str(control)) < 100
            else ["--no-control-socket"]
        )
        commands = [
            (
                "web",
                [
                    str(bin_dir / "gunicorn"),
                    "portal.wsgi:application",
                    "--bind", f"{host}:{port}",
                    "--workers", str(workers),
                    "--worker-class", "gthread",
                    "--threads", "4",
                    "--timeout", "60",
                    "--access-logfile", str(state_dir / "web-access.log"),
                    *control_socket,
                ],
            ),
            ("worker", [str(bin_dir / "celery"), "-A", "portal", "worker", "--loglevel", "INFO", "--concurrency", "2"]),
            # Webhook deliveries (api/tasks.py): their own queue and threads, each attempt
            # ending by WEBHOOK_DEADLINE_SECONDS, so receivers never hold the worker above.
            ("webhooks", [str(bin_dir / "celery"), "-A", "portal", "worker", "--loglevel", "INFO",
                          "-Q", "webhooks", "-n", f"webhooks-{port}@%h", "--pool", "threads",
                          "--concurrency", str(settings.WEBHOOK_WORKER_CONCURRENCY)]),
            (
                "beat",
                [
                    str(bin_dir / "celery"), "-A", "portal", "beat", "--loglevel", "INFO",
                    "--schedule", str(state_dir / "celerybeat-schedule"),
                ],
            ),
        ]  # fmt: skip
        return commands

    # The line `make run` prints for each process it starts.
    DESCRIPTIONS = {
        "web": "http://{host}:{port}/ (gunicorn, {workers} workers; requests in web-access.log)",
        "worker": "Celery worker (syncs, emails, payments, auto top-up)",
        "webhooks": "Celery worker for webhook deliveries",
        "beat": "Celery beat (a sync of every license each 5 minutes)",
    }

    LOG_TAIL_LINES = 15

    def shown_path(self, path: Path) -> str:
        """A path as the terminal shows it: from the checkout when inside it."""
        try:
            return str(path.relative_to(Path(settings.BASE_DIR)))
        except ValueError:
            return str(path)

    def log_tail(self, path: Path) -> None:
        """The last lines of a process's log, on the terminal: why it stopped."""
        try:
            with path.open(errors="replace") as log:
                lines = deque(log, maxlen=self.LOG_TAIL_LINES)
        except OSError:
            return
        self.stderr.write(f"the end of {self.shown_path(path)}:")
        for line in lines:
            self.stderr.write(f"  | {line.rstrip()}")

    def simulator_command(self, python: str, manage: str) -> list[str] | None:
        """The upstream simulator, unless an upstream is configured (UPSTREAM_URL)."""
        if settings.UPSTREAM_URL_GIVEN:
            return None
        port = str(settings.UPSTREAM_SIMULATOR_PORT)
        return [python, manage, "run_upstream_simulator", "--port", port]

    SIMULATOR_RESTARTS = 5  # within SIMULATOR_RESTART_WINDOW seconds, then it stays down

    SIMULATOR_RESTART_WINDOW = 300.0

    def simulator_restart(
        self,
        argv: list[str],
        exited: subprocess.Popen,
        restarts: list[float],
        start: Callable[[list[str]], subprocess.Popen],
    ) -> subprocess.Popen | None:
        """Start the simulator again after it exited (the portal keeps serving meanwhile);
        None, said on the console, once it has exited too often to keep trying."""
        now = time.monotonic()
        restarts[:] = [t for t in restarts if now - t < self.SIMULATOR_RESTART_WINDOW]
        if len(restarts) >= self.SIMULATOR_RESTARTS:
            self.stderr.write(
                f"the upstream simulator exited with status {exited.returncode} "
                f"{len(restarts) + 1} times in {self.SIMULATOR_RESTART_WINDOW:.0f} s; the portal "
                f"keeps serving without it (syncs fail until an upstream answers on "
                f"{settings.UPSTREAM_URL})."
            )
            return None
        restarts.append(now)
        self.stderr.write(
            f"the upstream simulator exited with status {exited.returncode}; restarting it "
            "(the portal keeps serving)."
        )
        return start(argv)

    def wait_for_simulator(self, proc: subprocess.Popen, timeout: float = 120) -> str:
        """Wait until the simulator answers /healthz (it generates the demo history first);
        "" when it does, else what went wrong."""
        url = f"{settings.UPSTREAM_URL}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"the upstream simulator exited with status {proc.returncode}"
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own http URL
                    if answer.status == 200:
                        return ""
            except OSError:
                pass
            time.sleep(0.3)
        return f"the upstream simulator did not answer on {url} within {timeout:.0f} s"

    # --- localstripe: a stateful fake Stripe server (PyPI), for card payments in the demo ---

    LOCALSTRIPE_KEYS = {
        "STRIPE_SECRET_KEY": "sk_test_localstripe",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_localstripe",
        "STRIPE_WEBHOOK_SECRET": "whsec_localstripe_demo",
    }

    def localstripe_url(self) -> str:
        return f"http://127.0.0.1:{settings.LOCALSTRIPE_PORT}"

    def localstripe_command(self, python: str) -> list[str] | None:
        """localstripe, unless a Stripe key is configured (then the portal uses that)."""
        if os.environ.get("STRIPE_SECRET_KEY") or importlib.util.find_spec("localstripe") is None:
            return None
        port = str(settings.LOCALSTRIPE_PORT)
        # --from-scratch: its store file (/tmp/localstripe.pickle) is shared by every
        # localstripe on the machine, tests included.
        return [python, "-m", "localstripe", "--port", port, "--from-scratch"]

    def localstripe_env(self) -> dict[str, str]:
        url = self.localstripe_url()
        return {
            **self.LOCALSTRIPE_KEYS,
            "STRIPE_API_BASE": url,
            "STRIPE_JS_URL": f"{url}/js.stripe.com/v3/",
        }

    def localstripe_ready(
        self, proc: subprocess.Popen, portal_port: int, timeout: float = 30
    ) -> str:
        """Wait for localstripe, then register the portal's webhook with it; "" when done."""
        url = self.localstripe_url()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"localstripe exited with status {proc.returncode}"
            try:
                with urllib.request.urlopen(f"{url}/js.stripe.com/v3/", timeout=2):  # noqa: S310 - our own http URL
                    break
            except OSError:
                time.sleep(0.3)
        else:
            return f"localstripe did not answer on {url} within {timeout:.0f} s"
        hook = f"http://127.0.0.1:{portal_port}/payments/stripe/webhook/"
        body = json.dumps(
            {"url": hook, "secret": self.LOCALSTRIPE_KEYS["STRIPE_WEBHOOK_SECRET"]}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - our own http URL
            f"{url}/_config/webhooks/portal", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310
            pass
        return ""

    def banner(self, host: str, port: int, stripe: bool = False):
        shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
        lines = [
            "",
            f"  Token & Credit Portal: http://{shown}:{port}/",
            f"  Staff admin:           http://{shown}:{port}/{settings.ADMIN_URL}",
            f"  Upstream:              {settings.UPSTREAM_URL}"
            + ("" if settings.UPSTREAM_URL_GIVEN else " (the simulator)"),
            *(
                [
                    f"  Stripe (localstripe):  {self.localstripe_url()}",
                    "    test cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined,",
                    "    4000 0000 0000 0341 is declined when charged (auto top-up failures),",
                    "    4000 0025 0000 3155 asks for 3-D Secure; any future expiry and CVC",
                ]
                if stripe
                else []
            ),
            f"  Demo logins (password {DEMO_PASSWORD}):",
            *[f"    {email}" for email in DEMO_LOGINS],
            f"  Staff logins also need a TOTP code for the admin: add the secret {DEMO_TOTP_SECRET}",
            "  to an authenticator app (or use a recovery code: demo-recovery-1, -2, -3; each once).",
            "  Ctrl-C stops everything.",
            "",
        ]
        self.stdout.write("\n".join(lines))
