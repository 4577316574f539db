"""The process's long-lived objects, kept out of the garbage collector's full passes."""

import gc


def heap_freeze() -> None:
    """Move every object alive now (modules, settings, URL patterns, the app itself) into
    the permanent generation, once the process has loaded what it serves.

    A full (generation 2) collection walks every tracked object, and a web process's
    loaded code is most of them: a page that allocates much (the usage explorer's year by
    endpoint) set one off every dozen requests, and each took 150-210 ms, which was the
    explorer's p95 (docs/benchmarks.md, 1b). Frozen, those passes took 20-30 ms. What the
    process allocates afterwards is collected as before. Python's documentation gives
    this use of gc.freeze() (its copy-on-write benefit for forked workers aside)."""
    gc.collect()
    gc.freeze()
