"""Each worker's native thread pools are sized to its share of the cores, even for
libraries imported before the fork (where environment variables come too late).

The check runs in a script of its own, numpy imported first: with one thread its
run process and workers are forked with numpy's BLAS pool already started, as
in a user's script; with a second thread, as a kernel has, they come from the
forkserver and import numpy after the environment variables are set. Each
script runs twice on one Lab: the second run is on the first run's warm workers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import labnb

TESTS = Path(__file__).parent
SCRIPT = """
import json, sys, threading
sys.path.insert(0, {tests!r})
import numpy
from threadpoolctl import threadpool_info
assert threadpool_info(), "numpy brings a BLAS thread pool"
import labnb
from labnb.runners.process import start_context
from nothing_lost_tasks import ThreadLimits
if {threaded!r}:
    threading.Thread(target=threading.Event().wait, daemon=True).start()
assert start_context().get_start_method() == ("forkserver" if {threaded!r} else "fork")
lab = labnb.Lab(storage={storage!r}, max_workers=2)
seen = [list(lab.run_tasks([ThreadLimits(n=run * 2 + n) for n in range(2)],
                           disable_progress=True).values()) for run in range(2)]
print(json.dumps(seen))
"""


@pytest.mark.parametrize("threaded", [False, True], ids=["script", "kernel-like"])
def test_thread_pools_inside_a_task_are_the_workers_share(tmp_path: Path, threaded: bool):
    script = SCRIPT.format(tests=str(TESTS), storage=str(tmp_path / "s"), threaded=threaded)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    share = max(1, labnb.engine.cpus.available_cpus() // 2)
    assert json.loads(done.stdout.splitlines()[-1]) == [[[share], [share]]] * 2
