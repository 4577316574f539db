"""The process's long-lived objects, kept out of the garbage collector's full passes, and
the collector's pace for what a page allocates."""

import gc

# Allocations (net of deallocations) between two collections of the youngest generation;
# Python's default is 700. With it, a page that allocates much (the usage explorer's year
# by endpoint: 365 days × endpoints of rows, bars and table cells, alive until the page is
# rendered) went through several young collections per request, which promoted the page's
# own objects, and every tenth of those set off a full pass over them: 20 full passes in
# 300 explorer requests, 35-48 ms each, which was the explorer's p95 (61-71 ms against a
# p50 of 29 ms). At 10,000 there was no full pass in the same 300 requests (p95 34 ms),
# for about 10 MB more resident memory: cyclic garbage waits longer to be collected.
YOUNG_THRESHOLD = 10_000


def heap_freeze() -> None:
    """Move every object alive now (modules, settings, URL patterns, the app itself) into
    the permanent generation, once the process has loaded what it serves, and collect the
    young generation less often (YOUNG_THRESHOLD).

    A full (generation 2) collection walks every tracked object, and a web process's
    loaded code is most of them: a page that allocates much (the usage explorer's year by
    endpoint) set one off every dozen requests, and each took 150-210 ms, which was the
    explorer's p95 (docs/benchmarks.md, 1b). Frozen, those passes took 20-30 ms. What the
    process allocates afterwards is collected as before. Python's documentation gives
    this use of gc.freeze() (its copy-on-write benefit for forked workers aside)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
