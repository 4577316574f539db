"""One export in a fresh process, so its peak memory is its own: prints one JSON line.

    python -m bench.export_worker --mode csv|copy --license KEY

`csv` downloads the customer's CSV history through the real view (Django's test client,
streamed, every chunk consumed); `copy` streams the same entries in the same order with
PostgreSQL's `COPY (SELECT …) TO STDOUT` through psycopg: the floor nothing in Python can
beat. Peak memory is the process's VmHWM (see maxrss_kb); the baseline is taken after
Django is set up and the client logged in, just before the export starts, so the growth
is what the export itself needs.
"""

import argparse
import json
import resource
import time

from bench.setup import configure_django

COPY_SQL = """
COPY (
    SELECT id, occurred_at, kind, service, amount, tokens, images, description
    FROM billing_ledgerentry WHERE license_id = %s
    ORDER BY occurred_at DESC, id DESC
) TO STDOUT (FORMAT csv)
"""


def maxrss_kb() -> int:
    """This process's peak resident memory in KiB: VmHWM, the figure ru_maxrss reports,
    minus a Linux quirk: ru_maxrss starts a child at its parent's peak (the high-water
    mark is carried across fork and exec), which would hide the export's own growth when
    the bench's big process starts the worker."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def export_csv(license, user) -> tuple[int, int, float, int]:
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(user)
    url = reverse("dashboard:history_csv", kwargs={"license_id": license.public_id})
    baseline = maxrss_kb()
    started = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    lines = size = 0
    first = None
    for chunk in response.streaming_content:  # type: ignore[attr-defined]  # the test client's streamed response
        if first is None:
            first = time.perf_counter() - started
        lines += chunk.count(b"\n")
        size += len(chunk)
    response.close()
    return lines - 1, size, first or 0.0, baseline  # the header is not a row


def export_copy(license) -> tuple[int, int, float, int]:
    from django.db import connection

    connection.ensure_connection()
    baseline = maxrss_kb()
    started = time.perf_counter()
    lines = size = 0
    first = None
    with connection.connection.cursor() as cursor, cursor.copy(COPY_SQL, [license.pk]) as copy:
        for block in copy:
            if first is None:
                first = time.perf_counter() - started
            lines += bytes(block).count(b"\n")
            size += len(block)
    return lines, size, first or 0.0, baseline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["csv", "copy"], required=True)
    parser.add_argument("--license", required=True)
    args = parser.parse_args()
    configure_django()
    from accounts.models import License, User

    license = License.objects.get(key=args.license)
    user = User.objects.get(email="bench@portal.example")
    started = time.perf_counter()
    if args.mode == "csv":
        rows, size, first, baseline = export_csv(license, user)
    else:
        rows, size, first, baseline = export_copy(license)
    seconds = time.perf_counter() - started
    peak = maxrss_kb()
    print(
        json.dumps(
            {
                "mode": args.mode,
                "license": args.license,
                "rows": rows,
                "bytes": size,
                "seconds": seconds,
                "first_byte_seconds": first,
                "baseline_kb": baseline,
                "peak_kb": peak,
                "growth_kb": peak - baseline,
            }
        )
    )


if __name__ == "__main__":
    main()
