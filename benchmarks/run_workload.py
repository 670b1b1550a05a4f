"""One measurement of ``compare_labtech.py``: ``run_workload.py LIBRARY WORKLOAD STORAGE``.

Prints ``{"seconds": ...}`` as one JSON line. Times building the ``Lab`` and
the task objects (a library may hash or validate parameters there) and the
call itself, including starting worker processes; not interpreter start-up or
imports. ``warm`` and ``list`` need a ``STORAGE`` that ``cold`` filled.

It is separate from ``compare_labtech.py`` and imports almost nothing
itself, because it is ``__main__``: spawn and forkserver workers may import
the main script (labtech's forked ones inherit it), and a heavy one would
bill the benchmark's own imports to whichever library does that.

Run it directly to profile one run, e.g. ``python -m cProfile -s cumtime
benchmarks/run_workload.py labnb cold /tmp/store``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

MAX_WORKERS = 2
LIBRARIES = ("labnb", "labtech")
WORKLOADS = ("cold", "warm", "list", "sleeps")


def run(library: str, workload: str, storage: str) -> float:
    """Run ``workload`` with ``library``; return the seconds taken, after checking the answer."""
    # Set before importing ``workloads`` (which picks the library from it) and
    # inherited by the worker processes, which import ``workloads`` too.
    os.environ["BENCH_LIBRARY"] = library
    import workloads  # only now: it picks the library from the environment

    lib = workloads.lib
    # labtech also draws a "top tasks" table: turn off all display on both sides.
    quiet: dict[str, Any] = {"disable_progress": True}
    if library == "labtech":
        quiet["disable_top"] = True
    # What a correct run returns, so a library that silently skipped work is caught.
    expected = {
        "cold": sum(range(workloads.LEAVES)),
        "warm": 2 * sum(range(workloads.LEAVES)),  # every leaf and every aggregator
        "list": workloads.LEAVES,
        "sleeps": sum(range(workloads.SLEEPS)),
    }[workload]

    start = time.perf_counter()
    lab = lib.Lab(storage=storage, max_workers=MAX_WORKERS, notebook=False)
    if workload == "list":
        answer = len(lab.cached_tasks([workloads.Leaf]))
    else:
        tasks = workloads.sleeps() if workload == "sleeps" else workloads.aggregators()
        if workload == "warm":  # everything cached is loaded again, leaves included
            tasks = [*tasks, *(leaf for aggregator in tasks for leaf in aggregator.leaves)]
        answer = sum(lab.run_tasks(tasks, **quiet).values())
    seconds = time.perf_counter() - start

    if answer != expected:
        sys.exit(f"{library} {workload}: got {answer}, want {expected}")
    return seconds


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in LIBRARIES or sys.argv[2] not in WORKLOADS:
        sys.exit(f"usage: run_workload.py {'|'.join(LIBRARIES)} {'|'.join(WORKLOADS)} STORAGE")
    print(json.dumps({"seconds": run(*sys.argv[1:])}))
