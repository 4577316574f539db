import subprocess
import sys

from portal.heap import YOUNG_THRESHOLD
from tests.processes import ROOT


def test_a_web_worker_keeps_its_loaded_code_out_of_full_garbage_collections():
    # Without it the explorer's p95 was the collector walking the loaded app (portal/heap.py).
    script = "import gc, portal.wsgi; print(gc.get_freeze_count(), gc.get_threshold()[0])"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    frozen, young = map(int, out.stdout.split()[-2:])
    assert frozen > 10_000
    # A page's own objects are not promoted by several young collections per request,
    # which set off full passes over them (the explorer's p95).
    assert young == YOUNG_THRESHOLD > 700
