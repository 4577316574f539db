"""2. CSV export: rows per second and peak memory, beside COPY of the same rows.

Each export runs in its own process (bench.export_worker) so its ru_maxrss is its own; the
CSV download and COPY alternate, several times, so both see the same machine.
"""

import json
import os
import statistics
import subprocess
import sys

from bench.setup import BENCH_DATABASE_URL, ROOT

REPEATS = 3


def one(mode: str, key: str) -> dict:
    env = {**os.environ, "DATABASE_URL": BENCH_DATABASE_URL, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "bench.export_worker", "--mode", mode, "--license", key],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"export worker {mode} {key} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(keys: list[str], repeats: int = REPEATS, *, extra: str | None = None) -> dict:
    """{key: {mode: {rows, rate (rows/s), seconds, first_byte_ms, growth_kb, runs}}}."""
    raw: dict[str, dict[str, list[dict]]] = {k: {"csv": [], "copy": []} for k in keys}
    for _ in range(repeats):
        for key in keys:
            for mode in ("csv", "copy"):
                raw[key][mode].append(one(mode, key))
    results: dict[str, dict] = {}
    for key, modes in raw.items():
        results[key] = {}
        for mode, runs in modes.items():
            rows = {r["rows"] for r in runs}
            assert len(rows) == 1, f"{key} {mode}: row counts differ between runs: {rows}"
            results[key][mode] = {
                "rows": rows.pop(),
                "rate": statistics.median(r["rows"] / r["seconds"] for r in runs),
                "seconds": statistics.median(r["seconds"] for r in runs),
                "first_byte_ms": statistics.median(r["first_byte_seconds"] for r in runs) * 1000,
                "bytes": runs[0]["bytes"],
                # The largest growth seen: the claim is about the worst case.
                "growth_kb": max(r["growth_kb"] for r in runs),
                "runs": len(runs),
            }
    if extra:
        # One long CSV download on its own (no COPY beside it): is memory still one page?
        r = one("csv", extra)
        results["extra"] = {
            "key": extra,
            "rows": r["rows"],
            "rate": r["rows"] / r["seconds"],
            "first_byte_ms": r["first_byte_seconds"] * 1000,
            "growth_kb": r["growth_kb"],
        }
    return results
