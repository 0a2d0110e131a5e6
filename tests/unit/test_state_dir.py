"""Each worker process on a machine gets a table store of its own, reused after a restart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from s321 import worker as worker_module
from s321.worker import claim_state_dir

_CLAIM = "from pathlib import Path\nfrom s321.worker import claim_state_dir\n"


def test_a_second_process_gets_another_slot_and_a_restart_gets_the_first_back(
    tmp_path: Path,
) -> None:
    """While one process holds slot0 another gets slot1; once it exits, slot0 is free again."""
    hold = _CLAIM + f"print(claim_state_dir(Path({str(tmp_path)!r})), flush=True)\n"
    hold += "import time\ntime.sleep(60)\n"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip().endswith("slot0")
        assert claim_state_dir(tmp_path).name == "slot1"
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
        worker_module._claimed.pop().close()  # release this process's slot1
    once = _CLAIM + f"print(claim_state_dir(Path({str(tmp_path)!r})))\n"
    done = subprocess.run([sys.executable, "-c", once], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("slot0")


def test_a_store_left_by_a_crash_is_kept_at_least_once_and_emptied_exactly_once(
    tmp_path: Path,
) -> None:
    """A slot whose last worker did not stop cleanly (no ``.clean`` marker) keeps its store
    at least once (the replacement reads only the changelog's tail) and is emptied for exactly
    once (its store may hold effects of an aborted transaction)."""
    slot = tmp_path / "slot0"
    slot.mkdir()
    (slot / "shipments-0.db").write_text("state")
    assert claim_state_dir(tmp_path) == slot
    worker_module._claimed.pop().close()
    assert (slot / "shipments-0.db").exists()
    assert claim_state_dir(tmp_path, keep_after_crash=False) == slot
    worker_module._claimed.pop().close()
    assert not (slot / "shipments-0.db").exists()
    (slot / "shipments-0.db").write_text("state")
    (slot / ".clean").touch()  # stopped cleanly: kept either way, and the marker is used up
    assert claim_state_dir(tmp_path, keep_after_crash=False) == slot
    worker_module._claimed.pop().close()
    assert (slot / "shipments-0.db").exists()
    assert not (slot / ".clean").exists()
