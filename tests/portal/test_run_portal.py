"""`make run`'s process runner: everything comes up, Ctrl-C leaves nothing behind, a
simulator that exits is restarted while the portal keeps serving; the ports follow PORT, and
an upstream named in UPSTREAM_URL means no simulator."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import PYTHON, ROOT, child_env, free_port


def descendants(pid: int) -> set[int]:
    """Every process whose ancestry includes pid (read from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {p for p, parent in parents.items() if parent in frontier} - found
        found |= children
        frontier = children
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def run_portal(port: int, env: dict):
    """Start `manage.py run_portal --port PORT`, wait for /healthz; (runner, its children)."""
    runner = subprocess.Popen(
        [PYTHON, "manage.py", "run_portal", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    status = None
    while time.monotonic() < deadline and runner.poll() is None:
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
            if status == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return runner, status


def stop(runner, port: int) -> str:
    """Ctrl-C; the runner's output. Removes what the run kept in the checkout (var/run-PORT)."""
    runner.send_signal(signal.SIGINT)
    output, _ = runner.communicate(timeout=60)
    shutil.rmtree(ROOT / "var" / f"run-{port}", ignore_errors=True)
    return output


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_run_portal_serves_and_ctrl_c_stops_every_process():
    port, sim_port = free_port(), free_port()
    # The runner uses the configured database; child_env points it at the test database so
    # a shared development database is not touched. No UPSTREAM_URL: the simulator starts.
    env = child_env(
        UPSTREAM_SIMULATOR_PORT=str(sim_port),
        UPSTREAM_URL="",
        # and localstripe starts beside it (no Stripe key), on a port of its own.
        LOCALSTRIPE_PORT=str(free_port()),
        STRIPE_SECRET_KEY="",
    )
    runner, status = run_portal(port, env)
    try:
        assert status == 200
        login = httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=5)
        assert login.status_code == 200 and "Log in" in login.text
        # localstripe runs beside it, for card payments.
        stripe_js = httpx.get(
            f"http://127.0.0.1:{env['LOCALSTRIPE_PORT']}/js.stripe.com/v3/", timeout=5
        )
        assert stripe_js.status_code == 200
        children = descendants(runner.pid)
        assert len(children) >= 4  # web, worker, beat and the simulator at least
        assert httpx.get(f"http://127.0.0.1:{sim_port}/healthz", timeout=5).status_code == 200
        # gunicorn's control socket is in the checkout, per port, not in the home directory.
        assert (ROOT / "var" / f"run-{port}" / "gunicorn.ctl").exists()
        # The requests are in the access log under var/, not on the terminal (issue 28).
        access = (ROOT / "var" / f"run-{port}" / "web-access.log").read_text()
        assert '"GET /accounts/login/ HTTP/1.1" 200' in access
        # Webhook deliveries have a worker of their own (api/tasks.py).
        assert any("-Q webhooks" in cmdline(pid) for pid in children)

        # The simulator dies: the portal keeps serving and the simulator comes back.
        [simulator] = [
            pid for pid in children
            if "run_upstream_simulator" in cmdline(pid) and "manage.py" in cmdline(pid)
        ]  # fmt: skip
        os.kill(simulator, signal.SIGKILL)

        def simulator_back() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{sim_port}/healthz", timeout=2).is_success
            except httpx.HTTPError:
                return False

        deadline = time.monotonic() + 60
        while not simulator_back():
            assert runner.poll() is None, "run_portal stopped everything"
            assert time.monotonic() < deadline, "the simulator did not come back"
            time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        children |= descendants(runner.pid)
    finally:
        output = stop(runner, port)
    assert "the upstream simulator exited with status -9; restarting it" in output
    assert "stopped." in output
    # A readable terminal (issue 28): one line per process started, naming its log under
    # var/; no access log, no Celery banner, no log lines of the processes.
    started = [line.split() for line in output.splitlines() if "(log: var/run-" in line]
    assert [words[0] for words in started] == [
        "simulator", "localstripe", "web", "worker", "webhooks", "beat",
    ]  # fmt: skip
    assert all(words[-1] == f"var/run-{port}/{words[0]}.log)" for words in started), started
    for noise in ("GET /", "celery@", "Booting worker", "SecurityWarning", " INFO "):
        assert noise not in output, noise
    assert f"Upstream:              http://127.0.0.1:{sim_port} (the simulator)" in output

    # A newcomer can log in to the admin: the staff logins' TOTP secret is in the banner.
    from demo.accounts import DEMO_TOTP_SECRET

    assert f"add the secret {DEMO_TOTP_SECRET}" in output
    time.sleep(0.5)
    assert [pid for pid in children if alive(pid)] == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_upstream_in_upstream_url_is_used_and_no_simulator_starts():
    port, upstream_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    runner, status = run_portal(port, child_env(UPSTREAM_URL=upstream))
    try:
        assert status == 200
        children = descendants(runner.pid)
        commands = [cmdline(pid) for pid in children]
        assert any("gunicorn" in c for c in commands), commands
        assert not any("run_upstream_simulator" in c for c in commands), commands
    finally:
        output = stop(runner, port)
    assert f"Upstream:              {upstream}\n" in output
    assert "stopped." in output


def test_the_simulator_port_and_links_follow_port_unless_set():
    """PORT alone moves the simulator to PORT + 100 and the links to PORT (a second copy on
    one machine); each one set explicitly wins. Empty counts as unset."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.UPSTREAM_SIMULATOR_PORT, s.UPSTREAM_URL, s.UPSTREAM_URL_GIVEN, "
        "s.PORTAL_BASE_URL]))"
    )

    def settings_with(**overrides):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", **overrides}
        result = subprocess.run(
            [PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    unset = {"UPSTREAM_SIMULATOR_PORT": "", "UPSTREAM_URL": "", "PORTAL_BASE_URL": ""}
    assert settings_with(PORT="8300", **unset) == [
        8400, "http://127.0.0.1:8400", False, "http://127.0.0.1:8300"
    ]  # fmt: skip
    assert settings_with(
        PORT="8300",
        UPSTREAM_SIMULATOR_PORT="8301",
        UPSTREAM_URL="https://metering.example",
        PORTAL_BASE_URL="https://portal.example",
    ) == [8301, "https://metering.example", True, "https://portal.example"]
