"""python -m bench.audit_worker VARIANT KEY REQUESTS: one process of part 7's garbage
collector comparison (bench.audit.gc_worker), its timings as JSON on the last line."""

import json
import sys

from bench.setup import configure_django

if __name__ == "__main__":
    configure_django()
    from bench.audit import gc_worker

    variant, key, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(gc_worker(variant, key, requests)))
