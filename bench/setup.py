"""Bench environment: its own database, licenses of known sizes, machine description."""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parent.parent
# The worktree's .env, as the settings read it (an exported variable wins): its
# BENCH_DATABASE_URL and BENCH_TENANTS_DATABASE_URL name this checkout's own bench databases.
environ.Env.read_env(ROOT / ".env", overwrite=False)
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench"
)

# How long each load took (gitignored, beside the data): rewritten when a license is loaded.
LOADS_FILE = ROOT / "bench" / "data" / "loads.json"

# key -> entries. Generated once and kept in the bench database between runs.
SIZES = {
    "BENCH-10K": 10_000,
    "BENCH-100K": 100_000,
    "BENCH-1M": 1_000_000,
    "BENCH-10M": 10_000_000,
}


def configure_django() -> None:
    os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The bench downloads its own licenses' histories again and again, which the per-license
    # rate limit on downloads (10 per 10 minutes) would refuse; the limit is not measured here.
    os.environ.setdefault("HISTORY_CSV_RATE_LIMIT", "1000000")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def prepare_database(sizes: dict[str, int], loads_file: Path = LOADS_FILE) -> dict:
    """Migrate, then make sure each bench license holds exactly its number of entries
    (the load times go to `loads_file`)."""
    from django.core.management import call_command

    from accounts.models import License, Membership, User
    from billing.models import LicenseBalance

    call_command("preflight", "--create-database")
    call_command("migrate", verbosity=0)
    user = User.objects.filter(email="bench@portal.example").first() or User.objects.create_user(
        email="bench@portal.example", password=None
    )
    licenses = {}
    for key, entries in sizes.items():
        license, _ = License.objects.get_or_create(
            key=key,
            defaults={
                "name": f"Bench {key[6:]}",
                "contact_email": "bench@portal.example",
                "timezone": "America/New_York",
            },
        )
        Membership.objects.get_or_create(license=license, user=user, defaults={"role": "owner"})
        have = (
            LicenseBalance.objects.filter(license=license).values_list("entries", flat=True).first()
            or 0
        )
        if have < entries:
            print(f"loading {entries - have:,} entries into {key} …", flush=True)
            started = time.perf_counter()
            call_command(
                "generate_usage", license=key, entries=entries - have, days=730, seed=len(key)
            )
            loads = load_times(loads_file)
            loads[key] = {"entries": entries - have, "seconds": time.perf_counter() - started}
            loads_file.parent.mkdir(parents=True, exist_ok=True)
            loads_file.write_text(json.dumps(loads, indent=1))
        elif not LicenseBalance.objects.filter(
            license=license, endpoint_rollups_ready=True
        ).exists():
            # A license loaded before the endpoint rollups existed (billing.0014): fill them
            # once, as `rebuild_rollups` does after that migration.
            print(f"rebuilding {key}'s rollups (endpoint rollups are new) …", flush=True)
            call_command("rebuild_rollups", license_key=key)
        licenses[key] = license
    return {"user": user, "licenses": licenses}


def load_times(loads_file: Path = LOADS_FILE) -> dict:
    """How long generate_usage took for each bench license, when this database was filled."""
    return json.loads(loads_file.read_text()) if loads_file.exists() else {}


def machine_description() -> str:
    def read(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return "?"

    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    mem_kb = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")))  # fmt: skip
    pg = read(["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "SHOW server_version"])
    return (
        f"{os.cpu_count()} × {cpu}, {mem_kb / 1024 / 1024:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"PostgreSQL {pg}; shared and noisy (other work runs beside it)."
    )
