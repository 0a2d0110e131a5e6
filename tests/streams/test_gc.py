"""The worker's settings of Python's collector (``settle_gc``, called as the worker starts)."""

from __future__ import annotations

import json
import subprocess
import sys

from s321.streams.app import GC_THRESHOLDS


def test_a_worker_moves_what_it_made_at_start_out_of_the_collectors_sight() -> None:
    """After ``settle_gc`` the collector runs at :data:`GC_THRESHOLDS` and the objects made
    before (modules, the app's code) are frozen: no collection looks at them again. Run in a
    process of its own, so that this test process keeps its own settings."""
    code = (
        "import gc, json; from s321.streams.app import settle_gc; "
        "before = gc.get_freeze_count(); settle_gc(); "
        "print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    before, frozen, thresholds = json.loads(out)
    assert before == 0
    assert frozen > 10_000  # the modules imported (faust, the rules) at least
    assert tuple(thresholds) == GC_THRESHOLDS
