"""The platform: health endpoint, preflight messages, production settings, logging."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from portal.health import probe_redis_client

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args, env_overrides=None, timeout=60):
    env = {**os.environ, **(env_overrides or {})}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.django_db
def test_healthz_is_200_when_database_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok"},
        "down": [],
    }


@pytest.mark.django_db
def test_healthz_keeps_its_redis_connection_and_gets_a_new_one_when_it_drops(client, settings):
    assert client.get("/healthz").status_code == 200
    probe = redis.Redis.from_url(settings.REDIS_URL)
    before = probe.client_list()
    assert client.get("/healthz").status_code == 200
    assert len(probe.client_list()) == len(before)  # no connection opened for the probe
    # Redis drops the probe's connection (as a restart would).
    probe.client_kill_filter(_id=str(probe_redis_client(settings.REDIS_URL).client_id()))
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_healthz_is_503_naming_redis_when_redis_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["redis"]
    assert body["checks"] == {"database": "ok", "redis": "down"}


def test_preflight_names_redis_variable_address_and_fix_in_one_line():
    result = run_manage("preflight", env_overrides={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "REDIS_URL" in lines[0]
    assert "redis://127.0.0.1:1/0" in lines[0]
    assert "redis-server" in lines[0]
    assert "Traceback" not in result.stderr


def test_preflight_names_database_variable_address_and_fix_in_one_line():
    result = run_manage(
        "preflight", env_overrides={"DATABASE_URL": "postgres://postgres@127.0.0.1:1/portal"}
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0]
    assert "127.0.0.1:1" in lines[0]
    assert "pg_ctlcluster" in lines[0]


def test_preflight_passes_when_services_answer():
    result = run_manage("preflight")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"ALLOWED_HOSTS": "portal.example.com"}, "SECRET_KEY"),
        ({"SECRET_KEY": "x" * 64}, "ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_to_start_without_real_secret_and_hosts(overrides, complaint):
    env = {"DJANGO_ENV": "production", "SECRET_KEY": "", "ALLOWED_HOSTS": ""}
    env.update(overrides)
    result = run_manage("check", env_overrides=env)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_production_has_debug_off_even_if_asked():
    env = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": "k" * 64,
        "ALLOWED_HOSTS": "portal.example.com",
        "DEBUG": "true",
    }
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        env_overrides=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_log_lines_carry_level_logger_and_message():
    result = run_manage(
        "shell",
        "-c",
        "import logging; logging.getLogger('portal.check').warning('hello from the log')",
    )
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stderr.splitlines() if "hello from the log" in ln)
    assert " WARNING portal.check hello from the log" in line


def test_application_code_has_no_print_calls():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ruff"), "check", "--select", "T20", "--quiet",
         "portal", "accounts", "billing", "usage"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
