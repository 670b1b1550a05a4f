"""Each worker's native thread pools are sized to its share of the cores, even for
libraries imported before the fork (where environment variables come too late).

The check runs in a script of its own: one thread, numpy imported first, so its
run process and workers are forked with numpy's BLAS pool already started, as
in a user's script (a kernel's workers come from the forkserver, where the
environment variables suffice)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import labnb

TESTS = Path(__file__).parent
SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
import numpy
from threadpoolctl import threadpool_info
assert threadpool_info(), "numpy brings a BLAS thread pool"
import labnb
from nothing_lost_tasks import ThreadLimits
lab = labnb.Lab(storage={storage!r}, max_workers=2)
print(json.dumps(list(lab.run_tasks([ThreadLimits(n=n) for n in range(2)],
                                    disable_progress=True).values())))
"""


def test_thread_pools_inside_a_task_are_the_workers_share(tmp_path: Path):
    script = SCRIPT.format(tests=str(TESTS), storage=str(tmp_path / "s"))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    share = max(1, labnb.engine.cpus.available_cpus() // 2)
    assert json.loads(done.stdout.splitlines()[-1]) == [[share], [share]]
