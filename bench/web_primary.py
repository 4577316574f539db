"""Benchmark 4's steps on its private primary, in a child process pointed at it
(BENCH_DATABASE_URL), so the bench's own process stays on the bench database.

    python -m bench.web_primary setup KEY SESSIONS   # migrate, load KEY, log in: one JSON line
    python -m bench.web_primary write                # the light writer, until terminated

BENCH_WEB_PRIMARY_DIR moves the cluster (default bench/data/web-primary/).
"""

import json
import signal
import sys
import time
from datetime import timedelta
from decimal import Decimal

from bench.setup import SIZES, configure_django
from bench.web import PRIMARY_DIR

# Where the private primary's load times are kept (beside its data, like the bench
# database's in bench/data/loads.json).
LOADS_FILE = PRIMARY_DIR / "loads.json"

WRITER_KEY = "BENCH-WRITER"
# The writer: a sync's page of this many usage records, this often, on its own license
# (so the dashboard's license and its kept sections never change).
WRITER_RECORDS = 50
WRITER_EVERY_SECONDS = 0.5


def setup(key: str, sessions: int) -> dict:
    from django.utils import timezone

    from accounts.models import License
    from bench.setup import prepare_database
    from bench.web import session_cookies
    from billing.purchases.services import purchase_record

    env = prepare_database({key: SIZES[key]}, loads_file=LOADS_FILE)
    license = env["licenses"][key]
    writer, _ = License.objects.get_or_create(
        key=WRITER_KEY,
        defaults={"name": "Bench writer", "contact_email": "bench@portal.example"},
    )
    # Enough credit that the writer's charges never take it near a low-balance alert.
    purchase_record(
        license=writer,
        amount=Decimal("1000000"),
        external_id=f"{WRITER_KEY}-credit",
        occurred_at=timezone.now() - timedelta(days=1),
    )
    return {
        "key": key,
        "public_id": str(license.public_id),
        "name": license.name,
        "cookies": session_cookies(env["user"], sessions),
        "loads": json.loads(LOADS_FILE.read_text()) if LOADS_FILE.exists() else {},
    }


def write() -> None:
    """Post WRITER_RECORDS usage records every WRITER_EVERY_SECONDS through the sync's own
    service (one transaction: entries, rollups, balance), until SIGTERM; then print how
    many were posted."""
    from django.utils import timezone

    from accounts.models import License
    from billing.charges.services import UsageRecord, usage_record_batch

    writer = License.objects.get(key=WRITER_KEY)
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    prefix = f"w{time.time_ns()}"
    posted = 0
    while not stop:
        started = time.monotonic()
        now = timezone.now()
        usage_record_batch(
            license=writer,
            records=[
                UsageRecord(
                    id=f"{prefix}-{posted + i}",
                    occurred_at=now,
                    input_tokens=1000 + i,
                    completion_tokens=200,
                    endpoint="/v1/bench",
                )
                for i in range(WRITER_RECORDS)
            ],
        )
        posted += WRITER_RECORDS
        time.sleep(max(0.0, WRITER_EVERY_SECONDS - (time.monotonic() - started)))
    print(json.dumps({"records": posted}), flush=True)


if __name__ == "__main__":
    configure_django()
    if sys.argv[1] == "setup":
        print(json.dumps(setup(sys.argv[2], int(sys.argv[3]))), flush=True)
    else:
        write()
