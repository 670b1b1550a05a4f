"""An output-heavy run against the same run with the task's output sent to /dev/null.

Two process-runner tasks each print ``--mb`` megabytes of short lines with the
default text progress on (its echo goes to a file, as a terminal's scrollback
would hold it). The baseline is the same Lab, the same tasks and the same
prints, but with each task's ``sys.stdout`` redirected to ``/dev/null`` inside
the task, so none of it is captured. Each case runs in a fresh interpreter
(``--case`` is the child's entry point) and reports its wall time and the
peak resident memory of the caller and (sampled every 50 ms) of the run
process, which holds the run's state. Printed: the time ratio (goal: ≤ 1.5)
and the extra memory as a multiple of the output captured.

    .venv/bin/python benchmarks/output_flood.py [--mb 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

import labnb

LINE = "x" * 69 + "\n"  # 70 bytes, as a typical log line


@labnb.task
class Flood:
    n: int
    lines: int
    to_null: bool

    def run(self) -> int:
        if self.to_null:
            with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
                for _ in range(self.lines):
                    print(LINE, end="")
        else:
            for _ in range(self.lines):
                print(LINE, end="")
        return self.n


def case(mb: float, to_null: bool, storage: str) -> dict[str, float]:
    lines = int(mb * 1e6 / len(LINE))
    peaks = {"run": 0}
    done = threading.Event()

    def sample_run_process() -> None:
        """The run process is detached (not a waited-for child): sample its memory."""
        while not done.wait(0.05):
            with contextlib.suppress(Exception):  # no storage or no run yet
                (run,) = labnb.Lab(storage=Path(storage) / "s", notebook=False).runs()[-1:]
                rss = psutil.Process(run.pid).memory_info().rss
                peaks["run"] = max(peaks["run"], rss)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sampler = threading.Thread(target=sample_run_process, daemon=True)
    sampler.start()
    started = time.perf_counter()
    with open(Path(storage) / "echo.txt", "w") as echo, contextlib.redirect_stderr(echo):
        lab = labnb.Lab(storage=Path(storage) / "s", max_workers=2, notebook=False)
        lab.run_tasks([Flood(n=i, lines=lines, to_null=to_null) for i in range(2)])
    seconds = time.perf_counter() - started
    done.set()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if not to_null:
        logs = lab.logs(Flood(n=0, lines=lines, to_null=False))
        assert len(logs) == lines * len(LINE), "lines were lost"
    return {
        "seconds": seconds,
        "caller_extra_mb": (peak - before) / 1024,
        "run_process_mb": peaks["run"] / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="megabytes printed per task")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", choices=["captured", "null"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        with tempfile.TemporaryDirectory() as storage:
            print(json.dumps(case(args.mb, args.case == "null", storage)))
        return
    results: dict[str, list[dict[str, float]]] = {"captured": [], "null": []}
    for _ in range(args.repeat):
        for name in results:
            command = [sys.executable, __file__, "--mb", str(args.mb), "--case", name]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[name].append(json.loads(out.splitlines()[-1]))
    captured = statistics.median(r["seconds"] for r in results["captured"])
    null = statistics.median(r["seconds"] for r in results["null"])
    caller = statistics.median(r["caller_extra_mb"] for r in results["captured"])
    run_process = statistics.median(r["run_process_mb"] for r in results["captured"])
    run_null = statistics.median(r["run_process_mb"] for r in results["null"])
    total_mb = 2 * args.mb
    load = os.getloadavg()[0]
    print(f"2 tasks x {args.mb:g} MB of output, median of {args.repeat} (load {load:.1f})")
    print(f"captured {captured:.2f} s, to /dev/null {null:.2f} s: ratio {captured / null:.2f}")
    print(
        f"caller's peak grew {caller:.0f} MB ({caller / total_mb:.2f}x the {total_mb:g} MB"
        f" captured); run process peak {run_process:.0f} MB against {run_null:.0f} MB"
        f" without output: +{(run_process - run_null) / total_mb:.2f}x the output"
    )


if __name__ == "__main__":
    main()
