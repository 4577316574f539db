import subprocess
import sys

from tests.processes import ROOT


def test_a_web_worker_keeps_its_loaded_code_out_of_full_garbage_collections():
    # Without it the explorer's p95 was the collector walking the loaded app (portal/heap.py).
    script = "import gc, portal.wsgi; print(gc.get_freeze_count())"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert int(out.stdout.split()[-1]) > 10_000
