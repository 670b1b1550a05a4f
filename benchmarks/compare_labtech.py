"""Time the same workloads through labnb and labtech 1.1.0, side by side.

Usage (from the repo root): ``python benchmarks/compare_labtech.py [--repeat N]``

Every measurement runs ``run_workload.py`` in a fresh interpreter, so neither
library benefits from warm imports, a live worker pool or in-memory caches
left by an earlier measurement. The libraries alternate, and who goes first
flips on each repetition, so drift in machine load hits both sides alike. The
median of the repetitions is reported with labnb/labtech and labnb's goal for
that ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from run_workload import LIBRARIES, MAX_WORKERS

CHILD = Path(__file__).with_name("run_workload.py")
CHILD_TIMEOUT_SECONDS = 120
# labnb's target for the labnb/labtech time ratio of each workload, in run order.
GOALS = {"cold": 0.33, "warm": 0.1, "list": 0.5, "sleeps": 1.02}
# Which storage each workload uses: warm and list reuse what cold filled.
STORAGE = {"cold": "dag", "warm": "dag", "list": "dag", "sleeps": "sleeps"}

Times = dict[str, dict[str, list[float]]]
"""``{workload: {library: [seconds of each repetition]}}``."""


def child_environment(pycache: Path) -> dict[str, str]:
    """The children's environment: bytecode caching on, into a private directory.

    With ``PYTHONDONTWRITEBYTECODE`` set (as some sandboxes do), the editable
    labnb would be compiled from source by every fresh process, including its
    worker pools and imports done lazily inside the timed calls, while pip wrote
    ``.pyc`` files for the installed labtech. A cache prefix turns caching on
    without writing ``__pycache__`` directories into the source tree.
    """
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(pycache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def measure(library: str, workload: str, storage: Path, env: dict[str, str]) -> float:
    """Time one workload in a fresh interpreter; stop the benchmark if it failed."""
    command = [sys.executable, str(CHILD), library, workload, str(storage)]
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=CHILD_TIMEOUT_SECONDS,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"\n{library} {workload} failed ({proc.returncode}):\n{proc.stderr}")
    # The last line: anything a library printed to stdout comes before it.
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])


def benchmark(repeat: int) -> Times:
    """Run one warm-up repetition, then ``repeat`` measured ones.

    The warm-up fills the bytecode cache (the prefix starts empty, so even the
    standard library compiles once) and the OS file cache for both libraries.
    """
    times: Times = {workload: {library: [] for library in LIBRARIES} for workload in GOALS}
    with tempfile.TemporaryDirectory(prefix="compare-labtech-") as tmp:
        env = child_environment(Path(tmp, "pycache"))
        for rep in range(-1, repeat):  # -1 is the warm-up
            order = LIBRARIES if rep % 2 == 0 else LIBRARIES[::-1]
            for workload in GOALS:  # in order: warm and list need cold's storage
                for library in order:
                    # labtech does not create missing parent directories: keep storage flat.
                    storage = Path(tmp, f"{rep}-{library}-{STORAGE[workload]}")
                    seconds = measure(library, workload, storage, env)
                    if rep >= 0:
                        times[workload][library].append(seconds)
                    print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return times


def print_table(times: Times, repeat: int, load_before: float) -> None:
    """Medians, ratio and goal per workload, with a warning about other load."""
    print(f"median of {repeat} fresh-process run(s) per cell, max_workers={MAX_WORKERS}, seconds")
    print(
        f"(1-minute load average before the start: {load_before:.2f} on {os.cpu_count()} CPUs;"
        " other load skews the times)"
    )
    print(f"{'workload':<8} {'labnb':>8} {'labtech':>8} {'ratio':>7} {'goal':>6}  met")
    for workload, goal in GOALS.items():
        ours, theirs = (statistics.median(times[workload][library]) for library in LIBRARIES)
        ratio = ours / theirs
        met = "yes" if ratio <= goal else "NO"
        print(f"{workload:<8} {ours:>8.3f} {theirs:>8.3f} {ratio:>7.3f} {goal:>6.2f}  {met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per library and workload")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    # Taken before any child runs: during the run the benchmark is its own load.
    load_before = os.getloadavg()[0]
    print_table(benchmark(args.repeat), args.repeat, load_before)


if __name__ == "__main__":
    main()
