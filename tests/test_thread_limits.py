"""Each worker's native thread pools are sized to its share of the cores, even for
libraries imported before the fork (where environment variables come too late)."""

from __future__ import annotations

from pathlib import Path

import numpy  # noqa: F401 - loaded in this process before workers fork, as in a notebook
from nothing_lost_tasks import ThreadLimits
from threadpoolctl import threadpool_info

import labnb


def test_thread_pools_inside_a_task_are_the_workers_share(tmp_path: Path):
    assert threadpool_info(), "numpy brings a BLAS thread pool"
    lab = labnb.Lab(storage=tmp_path / "s", max_workers=2)
    results = lab.run_tasks([ThreadLimits(n=n) for n in range(2)], disable_progress=True)
    share = max(1, labnb.engine.cpus.available_cpus() // 2)
    assert list(results.values()) == [[share], [share]]
