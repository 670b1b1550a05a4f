"""A chain of dependent tasks against the same number of independent ones.

``--n`` trivial tasks, each depending on the one before (the chain), or none
depending on any (the reference), run by a default ``Lab`` (process runner,
run process, 2 workers) on an empty storage, each case in a fresh
interpreter. A chain runs one task at a time, each waiting for its
predecessor's result to reach the run process, so it is latency-bound: the
ratio says what a chain costs beyond that (pickling, planning and storing a
deep graph once went quadratic or hit the recursion limit).

    .venv/bin/python benchmarks/deep_chain.py [--n 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import labnb


@labnb.task
class Link:
    previous: object
    n: int

    def run(self) -> int:
        return 1 if self.previous is None else self.previous.result + 1


def case(n: int, chained: bool, storage: str) -> float:
    tasks = [Link(previous=None, n=0)]
    for i in range(1, n):
        tasks.append(Link(previous=tasks[-1] if chained else None, n=i))
    roots = tasks[-1:] if chained else tasks
    started = time.perf_counter()
    labnb.Lab(storage=storage, max_workers=2).run_tasks(roots, disable_progress=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", choices=["chain", "independent"])
    parser.add_argument("--storage")
    args = parser.parse_args()
    if args.case:
        print(case(args.n, args.case == "chain", args.storage))
        return
    times: dict[str, list[float]] = {"chain": [], "independent": []}
    for _ in range(args.repeat):
        for name in times:
            with tempfile.TemporaryDirectory() as folder:
                command = [sys.executable, __file__, "--case", name, "--n", str(args.n)]
                command += ["--storage", str(Path(folder, "s"))]
                out = subprocess.run(command, check=True, capture_output=True, text=True)
                times[name].append(float(out.stdout.split()[-1]))
    chain, independent = (statistics.median(times[name]) for name in times)
    print(f"{args.n} tasks, median of {args.repeat}: chain {chain:.1f} s, ", end="")
    print(f"independent {independent:.1f} s")
    print(f"chain / independent: {chain / independent:.2f}")


if __name__ == "__main__":
    main()
