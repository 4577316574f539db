"""The garbage collector's pace in a web process: how many allocations pass between two
collections of the youngest generation (Python's default: 700).

A page that allocates much, alive until it is rendered (the usage explorer's year by
endpoint: 365 days × endpoints of rows, bars and table cells), went through several young
collections per request at 700, which promoted the page's own objects to the older
generations, and every tenth of those collections set off a full pass over the whole heap,
the loaded app included. Measured side by side (bench part 7, docs/architecture.md "Clever
code, audited"): at 700, a full pass in one explorer request of 17 (about 170 ms each on a
loaded machine), the explorer's p95 1.33 x today's; at 10,000, none in 900 requests, for
about 10 MB more resident memory per process (cyclic garbage waits longer). Freezing the
loaded app out of the full passes (gc.freeze) made the rare ones left cheaper but changed no
p50 or p95, so it is not done.
"""

import gc

YOUNG_THRESHOLD = 10_000


def heap_tune() -> None:
    """Collect the young generation every YOUNG_THRESHOLD allocations, once the process has
    loaded what it serves (portal/wsgi.py; the bench's process does the same)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
