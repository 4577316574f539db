"""python -m bench: the five benchmarks in one run, written to docs/benchmarks.md.

    python -m bench                  # everything, 10 M entries included (the committed file)
    python -m bench --quick          # no 10 M license, fewer rounds; writes bench/data/
    python -m bench --parts export   # some parts only (dashboard, export, ingest, web, console,
                                     # tenants, audit, realtime)
    python -m bench --parts tenants --update   # rewrite only these parts' sections of
                                               # docs/benchmarks.md, keeping the others'
    BENCH_SIZES=10K,1M python -m bench --parts dashboard
    python -m bench --render bench/data/results.json   # the report of a saved run

After each part the results so far are saved in bench/data/results.json, so a run cut short
(the full run takes most of an hour) still leaves what it measured, marked partial.

The bench licenses live in their own database (BENCH_DATABASE_URL, default portal_bench)
and are loaded once (generate_usage) and kept between runs; the tenants part has its own
(BENCH_TENANTS_DATABASE_URL, default portal_bench_tenants), and the web part a private
primary cluster of its own (bench/data/web-primary/, kept the same way) with a streaming
standby made for each run.
"""

import argparse
import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.setup import ROOT, SIZES, configure_django

PARTS = ("dashboard", "export", "ingest", "web", "console", "tenants", "audit", "realtime")
# The realtime part draws this license's dashboard (loaded like the dashboard part's).
REALTIME_KEY = "BENCH-100K"
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"
QUICK_OUTPUT = ROOT / "bench" / "data" / "benchmarks-quick.md"
EXPORT_KEYS = ["BENCH-100K", "BENCH-1M"]


def parse_sizes(text: str) -> list[str]:
    keys = [f"BENCH-{part.strip().upper()}" for part in text.split(",") if part.strip()]
    unknown = [k for k in keys if k not in SIZES]
    if unknown:
        raise SystemExit(f"unknown size(s) {unknown}; choose among {', '.join(SIZES)}")
    return keys


def git_commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip 10 M, fewer rounds")
    parser.add_argument("--parts", default=os.environ.get("BENCH_PARTS", ",".join(PARTS)))
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", ""))
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="requests per size (dashboard) and per page (console)",
    )
    parser.add_argument("--output", default=None)
    parser.add_argument(
        "--update",
        action="store_true",
        help="replace only the sections of the parts run in docs/benchmarks.md",
    )
    parser.add_argument(
        "--render",
        metavar="RESULTS_JSON",
        default=None,
        help="write the report of a saved run (bench/data/results.json) instead of running",
    )
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        default = DEFAULT_OUTPUT if saved["full"] else QUICK_OUTPUT
        write_report(saved, args.output or default, args.update)
        return
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if bad := [p for p in parts if p not in PARTS]:
        raise SystemExit(f"unknown part(s) {bad}; choose among {', '.join(PARTS)}")
    if args.sizes:
        keys = parse_sizes(args.sizes)
    elif args.quick:
        keys = ["BENCH-10K", "BENCH-100K", "BENCH-1M"]
    else:
        keys = list(SIZES)
    full = not args.quick and not args.sizes and set(parts) == set(PARTS)
    output = args.output or (DEFAULT_OUTPUT if full else QUICK_OUTPUT)

    configure_django()
    from bench import audit, console, dashboard, export, ingest, realtime, tenants, web
    from bench.setup import load_times, machine_description, prepare_database

    needed = (set(keys) if set(parts) - {"tenants", "web", "realtime"} else set()) | (
        set(EXPORT_KEYS) if "export" in parts else set()
    )
    if "realtime" in parts:
        needed.add(REALTIME_KEY)
    # The tenants part has its own database, and the web part its own primary cluster.
    if set(parts) - {"tenants", "web"}:
        env = prepare_database({k: SIZES[k] for k in SIZES if k in needed})
    results: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "full": full,
        "machine": machine_description(),
        "sizes": {k: SIZES[k] for k in keys},
        "loads": load_times(),
    }
    largest = keys[-1]
    # As a web worker does once the app is loaded (portal/wsgi.py): the in-process parts
    # then pay the garbage collector as a served page does.
    from portal.heap import heap_tune

    heap_tune()
    started = time.perf_counter()
    saved = ROOT / "bench" / "data" / "results.json"
    saved.parent.mkdir(exist_ok=True)

    def save(part: str) -> None:
        # After each part, so a run cut short keeps what it measured (--render writes it).
        results["seconds"] = time.perf_counter() - started
        results["parts_done"] = [*results.get("parts_done", []), part]
        results["full"] = full and set(results["parts_done"]) == set(parts)
        saved.write_text(json.dumps(results, indent=1, default=str))

    if "dashboard" in parts:
        print(f"1. dashboard: {', '.join(keys)} …", flush=True)
        requests = args.requests or (200 if args.quick else dashboard.REQUESTS)
        results["dashboard"] = dashboard.run(env, keys, requests)
        print(f"1b. usage explorer, a year by endpoint: {largest} …", flush=True)
        results["explorer"] = dashboard.run_explorer(env, largest, requests)
        save("dashboard")
    if "export" in parts:
        print(f"2. export: {', '.join(EXPORT_KEYS)} …", flush=True)
        results["export"] = export.run(
            EXPORT_KEYS,
            repeats=2 if args.quick else export.REPEATS,
            extra="BENCH-10M" if "BENCH-10M" in keys else None,
        )
        save("export")
    if "ingest" in parts:
        print("3. ingest …", flush=True)
        results["ingest"] = ingest.run(20_000 if args.quick else ingest.RECORDS)
        save("ingest")
    if "web" in parts:
        print(
            f"4. web: dashboard of {largest} while {largest}'s history downloads from the "
            "primary or a replica …",
            flush=True,
        )
        results["web"] = web.run(
            largest,
            windows=2 if args.quick else web.WINDOWS,
            duration=5 if args.quick else web.DURATION,
        )
        save("web")
    if "console" in parts:
        print(
            f"5. console: admin ledger, staff search, All transactions of {largest} …", flush=True
        )
        results["console"] = console.run(
            env, largest, requests=args.requests or (40 if args.quick else console.REQUESTS)
        )
        save("console")
    if "tenants" in parts:
        print("6. tenants: one beat cycle at 1 K, 10 K, 100 K licenses …", flush=True)
        results["tenants"] = tenants.run()
        save("tenants")
    if "audit" in parts:
        print(f"7. clever code on and off: pages of {largest}, the collector, ingest …", flush=True)
        results["audit"] = audit.run(env, largest, quick=args.quick)
        save("audit")
    if "realtime" in parts:
        print(
            f"8. realtime: push ingest, the gate beside /healthz, drawn {REALTIME_KEY} ÷ login …",
            flush=True,
        )
        results["realtime"] = (
            realtime.run(
                env,
                REALTIME_KEY,
                push_seconds=5,
                gate_seconds=2,
                gate_rounds=1,
                dashboard_rounds=40,
            )
            if args.quick
            else realtime.run(env, REALTIME_KEY)
        )
        save("realtime")
    write_report(results, args.output or output, args.update)


def write_report(results: dict, output: Path | str, update: bool) -> None:
    from bench import report

    text = report.render(results)
    if update:  # only the sections of the parts run, into the committed file by default
        output = DEFAULT_OUTPUT if output == QUICK_OUTPUT else output
        text = report.sections_replace(Path(output).read_text(), text)
    text = report.with_goals(text)
    with open(output, "w") as f:
        f.write(text)
    print(text)
    print(f"written to {output}")


if __name__ == "__main__":
    main()
