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
